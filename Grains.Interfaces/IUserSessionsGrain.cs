using Orleans.Concurrency;

namespace SessionGrains;

/// <summary>
/// The index of one user's sessions, keyed by user id. It alone decides creates (so the per-user limit
/// holds under concurrency), rotations and ends, and it serves "your devices" and per-user counts
/// without touching the sessions.
/// </summary>
[Alias("sessiongrains.user-sessions")]
public interface IUserSessionsGrain : IGrainWithStringKey
{
    /// <summary>Creates a session with the given id, applying the per-user limit and the creation-burst policy.</summary>
    /// <exception cref="ArgumentException">Invalid options (timeouts, metadata size, limit).</exception>
    [Alias("create")]
    Task<SessionCreateResult> CreateSessionAsync(string sessionId, SessionCreateOptions options);

    /// <summary>
    /// Ends one session. With <paramref name="onlyIfListed"/> the session must be in this user's index
    /// (revoke by id); without it (logout by token) the session is ended even if the index lost track of it.
    /// </summary>
    [Alias("end")]
    Task<bool> EndSessionAsync(string sessionId, SessionEndReason reason, bool onlyIfListed);

    /// <summary>Moves a live session to a new id (a new token). Null when the old session is not live.</summary>
    [Alias("rotate")]
    Task<SessionInfo?> RotateSessionAsync(string oldSessionId, string newSessionId, TimeSpan gracePeriod);

    /// <summary>One page of the user's live sessions, oldest first.</summary>
    [Alias("list")]
    Task<SessionPage> ListAsync(int limit, string? cursor);

    /// <summary>Ends every session of the user except <paramref name="exceptSessionId"/>; returns how many ended.</summary>
    [Alias("end-all")]
    Task<int> EndAllAsync(string? exceptSessionId);

    /// <summary>Number of the user's live sessions.</summary>
    [Alias("count")]
    Task<int> CountAsync();

    /// <summary>Session to index: the session's persisted last access moved on (sent lazily, one-way).</summary>
    [Alias("report-activity"), OneWay]
    Task ReportActivityAsync(SessionSummary session);

    /// <summary>Session to index: the session ended by itself (expiry, or a signal policy) and cleared its state (one-way).</summary>
    [Alias("report-ended"), OneWay]
    Task ReportEndedAsync(string sessionId, SessionEndReason reason);
}

/// <summary>Outcome of <see cref="IUserSessionsGrain.CreateSessionAsync"/>: the session, or why there is none.</summary>
/// <param name="Session">The new session; null when refused.</param>
/// <param name="LimitReached">Refused by the per-user limit (policy <see cref="SessionLimitPolicy.RejectNew"/>).</param>
/// <param name="RetryAfter">Refused because the user's sessions are being created too fast; try again after this.</param>
[GenerateSerializer, Immutable, Alias("sessiongrains.session-create-result")]
public sealed record class SessionCreateResult(
    [property: Id(0)] SessionInfo? Session,
    [property: Id(1)] bool LimitReached,
    [property: Id(2)] TimeSpan? RetryAfter);

/// <summary>
/// One shard of the cluster-wide live-session counter. User indexes add their changes to the shard their
/// user id hashes to, so the total is a sum of a few grains, never a key scan.
/// </summary>
[Alias("sessiongrains.session-counter")]
public interface ISessionCounterGrain : IGrainWithIntegerKey
{
    /// <summary>Number of shards; the total is the sum of shards 0..Shards-1.</summary>
    public const int Shards = 8;

    /// <summary>Adds a change of the live-session count.</summary>
    [Alias("add")]
    Task AddAsync(long delta);

    /// <summary>This shard's live-session count.</summary>
    [Alias("get"), ReadOnly]
    Task<long> GetAsync();
}
