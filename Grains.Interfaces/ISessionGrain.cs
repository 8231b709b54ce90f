using Orleans.Concurrency;

namespace SessionGrains;

/// <summary>
/// One session, keyed by its public session id (SHA-256 of the token, base64url). The grain answers
/// validations from memory and checks the idle and absolute expiry on every call.
/// </summary>
/// <remarks>
/// Methods marked "index only" are called by <see cref="IUserSessionsGrain"/>, which is the single place
/// that creates (it stores a new session directly, without activating it), rotates and ends sessions, so a
/// user's index and sessions never disagree. A session
/// grain never waits on its index (it only sends one-way reports), so the two can never deadlock.
/// </remarks>
[Alias("sessiongrains.session")]
public interface ISessionGrain : IGrainWithStringKey
{
    /// <summary>Returns the live session and slides its idle timeout, or null when there is none.</summary>
    [Alias("validate")]
    Task<SessionInfo?> ValidateAsync(ClientInfo? client);

    /// <summary>Returns the live session without sliding, or null.</summary>
    [Alias("peek"), ReadOnly]
    Task<SessionInfo?> PeekAsync();

    /// <summary>Applies a change. Calls are processed one at a time, so concurrent updates never lose each other.</summary>
    [Alias("update")]
    Task<SessionUpdateResult> UpdateAsync(SessionUpdate change, long? expectedVersion);

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

/// <summary>Outcome of <see cref="ISessionGrain.UpdateAsync"/>.</summary>
/// <param name="Session">The updated session; null when not found or on a version conflict.</param>
/// <param name="CurrentVersion">On a version conflict, the session's version; otherwise null.</param>
[GenerateSerializer, Immutable, Alias("sessiongrains.session-update-result")]
public sealed record class SessionUpdateResult(
    [property: Id(0)] SessionInfo? Session,
    [property: Id(1)] long? CurrentVersion);
