namespace SessionGrains;

/// <summary>
/// The session store as a frontend sees it. Tokens are checked for shape before any grain is called: a
/// junk token costs no activation and no storage read. All methods throw <see cref="ArgumentException"/>
/// on invalid arguments (user ids, timeouts, sizes) and change nothing when they do.
/// </summary>
public interface ISessionStore
{
    /// <summary>Creates a session for <paramref name="userId"/> and registers it in the user's index before returning.</summary>
    /// <exception cref="SessionLimitExceededException">The user is at the limit and the policy is <see cref="SessionLimitPolicy.RejectNew"/>.</exception>
    /// <exception cref="SessionThrottledException">The user's sessions are created too fast and the creation-burst policy throttles.</exception>
    /// <remarks>The client details are kept as <see cref="ClientInfo.Normalize"/> returns them (a non-IP address is an <see cref="ArgumentException"/>)
    /// and count towards the session data limit.</remarks>
    Task<CreatedSession> CreateAsync(string userId, SessionCreateOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Returns the live session for <paramref name="token"/> and slides its idle timeout; null when there is
    /// none. <paramref name="client"/> (IP, User-Agent) feeds the signals reported on <see cref="SessionInfo.Signals"/>;
    /// a signal whose policy is Revoke ends the session (null). <paramref name="client"/> is taken as
    /// <see cref="ClientInfo.Normalize"/> returns it: a non-IP address is an <see cref="ArgumentException"/>.
    /// </summary>
    /// <exception cref="SessionThrottledException">The session is throttled by the request-burst policy.</exception>
    Task<SessionInfo?> ValidateAsync(string? token, ClientInfo? client = null, CancellationToken cancellationToken = default);

    /// <summary>Applies <paramref name="change"/>; null when there is no live session.</summary>
    /// <exception cref="SessionVersionConflictException"><paramref name="expectedVersion"/> is not the session's version.</exception>
    Task<SessionInfo?> UpdateAsync(string? token, SessionUpdate change, long? expectedVersion = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Issues a new token for the same session (after login or a privilege change). The old token stops
    /// working at once, or after <paramref name="gracePeriod"/> for requests already in flight. Null when
    /// there is no live session.
    /// </summary>
    Task<CreatedSession?> RotateAsync(string? token, TimeSpan gracePeriod = default, CancellationToken cancellationToken = default);

    /// <summary>Ends the session (logout) and removes it from the user's index. False when there was none.</summary>
    Task<bool> DeleteAsync(string? token, CancellationToken cancellationToken = default);

    /// <summary>Ends one of the user's sessions by its public id ("sign out that device"). False when the user has no such session.</summary>
    Task<bool> RevokeAsync(string userId, string? sessionId, CancellationToken cancellationToken = default);

    /// <summary>One page of the user's live sessions, oldest first (<paramref name="limit"/> 1..1000).</summary>
    Task<SessionPage> ListByUserAsync(string userId, int limit = 100, string? cursor = null, CancellationToken cancellationToken = default);

    /// <summary>Ends all the user's sessions except <paramref name="exceptSessionId"/> ("sign out everywhere"); returns how many ended.</summary>
    Task<int> DeleteAllForUserAsync(string userId, string? exceptSessionId = null, CancellationToken cancellationToken = default);

    /// <summary>Live sessions in the whole store, from counters kept by the grains (no key scan).</summary>
    /// <remarks>Sessions that expired but whose cleanup has not run yet are still counted (minutes at most).</remarks>
    Task<long> CountAsync(CancellationToken cancellationToken = default);

    /// <summary>Live sessions of one user.</summary>
    Task<int> CountForUserAsync(string userId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Session events (created, rotated, ended and why, signals) from the cluster's event log, in log order, as the
    /// grains make the changes: all of them, or only <paramref name="userId"/>'s. Each event comes once.
    /// </summary>
    /// <param name="userId">Only this user's events; null for every user's.</param>
    /// <param name="afterPosition">
    /// Null for only what happens from now on; <see cref="SessionEvent.Beginning"/> for everything the log still
    /// retains; an event's <see cref="SessionEvent.Position"/> to resume after it (a consumer that was down misses
    /// nothing still retained).
    /// </param>
    /// <param name="cancellationToken">Ends the subscription; until then it waits out silo and store outages.</param>
    /// <exception cref="ArgumentException"><paramref name="afterPosition"/> is not a position of this cluster's log.</exception>
    /// <exception cref="SessionEventsTrimmedException">Events after the position were trimmed before they were read (the log keeps the newest only).</exception>
    IAsyncEnumerable<SessionEvent> SubscribeAsync(string? userId = null, string? afterPosition = null, CancellationToken cancellationToken = default);
}
