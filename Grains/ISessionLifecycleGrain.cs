namespace SessionGrains;

/// <summary>
/// What a session's index (<see cref="IUserSessionsGrain"/>) and its expiry bucket call on it; a frontend only
/// reaches <see cref="ISessionGrain"/>. The index is the single place that creates (it stores a new session
/// directly, without activating it), rotates and ends sessions, so a user's index and sessions never disagree.
/// A session grain never waits on its index (it only sends one-way reports), so the two can never deadlock.
/// </summary>
/// <remarks>The method aliases are those these methods had on <see cref="ISessionGrain"/>.</remarks>
[Alias("sessiongrains.session-lifecycle")]
internal interface ISessionLifecycleGrain : IGrainWithStringKey
{
    /// <summary>
    /// Expiry bucket only: ends the session if it has expired (it leaves its index and storage), or files it
    /// for a later check if it is still live. Idempotent: buckets may call late or twice.
    /// </summary>
    [Alias("check-expiry")]
    Task CheckExpiryAsync();

    /// <summary>Index only: ends the session and clears its state. True if it was live.</summary>
    [Alias("end")]
    Task<bool> EndAsync(SessionEndReason reason);

    /// <summary>
    /// Index only: ends this id as part of a rotation and returns the session to carry over to
    /// <paramref name="newSessionId"/>, or null when it is not live. Within <paramref name="gracePeriod"/>
    /// validations of the old token are answered by the new session.
    /// </summary>
    [Alias("hand-over")]
    Task<SessionInfo?> HandOverAsync(string newSessionId, TimeSpan gracePeriod);
}
