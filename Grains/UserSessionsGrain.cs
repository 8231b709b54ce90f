using System.Buffers.Text;
using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Storage;

namespace SessionGrains;

/// <summary>
/// One user's session index. It is the only place that creates, rotates and ends sessions, and it
/// processes one request at a time, so the per-user limit and the list are race-free. It calls session
/// grains; sessions never wait on it (they send one-way reports), so there is no deadlock cycle.
/// </summary>
[GrainType(GrainTypeNames.UserSessions)]
internal sealed partial class UserSessionsGrain : Grain, IUserSessionsGrain
{
    private const int MaxPageSize = 1000;

    private readonly IPersistentState<UserSessionsState> _state;
    private readonly IGrainStorage _sessionStorage;
    private readonly SessionGrainsOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<UserSessionsGrain> _logger;
    private readonly SessionGrainsMetrics _metrics;

    // Activity reports change only "last active"; they are written with the next structural change or on deactivation.
    private bool _activityUnsaved;

    // Recent creates, for the creation-burst (credential stuffing) signal; in memory, like any rate window.
    private readonly Queue<DateTimeOffset> _recentCreates = new();
    private DateTimeOffset _creationCooldownEnds;

    // This user's counter shard, resolved once (GetGrain looks up the interface's attributes on every call).
    private ISessionCounterGrain? _counter;

    public UserSessionsGrain(
        [PersistentState("index", StorageNames.UserIndex)] IPersistentState<UserSessionsState> state,
        [FromKeyedServices(StorageNames.Sessions)] IGrainStorage sessionStorage,
        IOptions<SessionGrainsOptions> options,
        SessionGrainsMetrics metrics,
        ILogger<UserSessionsGrain> logger)
    {
        _state = state;
        _sessionStorage = sessionStorage;
        _options = options.Value;
        _time = _options.TimeProvider;
        _metrics = metrics;
        _logger = logger;
    }

    private string UserId => this.GetPrimaryKeyString();

    private Dictionary<string, SessionSummary> Sessions => _state.State.Sessions;

    public Task<SessionCreateResult> CreateSessionAsync(string sessionId, SessionCreateOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return StorageConflicts.RetryAsync(() => CreateCoreAsync(sessionId, options), ReloadAsync);
    }

    private async Task<SessionCreateResult> CreateCoreAsync(string sessionId, SessionCreateOptions options)
    {
        if (Sessions.ContainsKey(sessionId))
        {
            // A retried create whose first answer was lost: the session is already here.
            if (await Session(sessionId).PeekAsync() is { } existing)
            {
                return new SessionCreateResult(existing, LimitReached: false, null);
            }

            Sessions.Remove(sessionId);
            await SaveAsync(-1);
        }

        var now = _time.GetUtcNow();
        var session = SessionRules.NewSession(sessionId, UserId, options, _options, now);
        var (limit, policy) = SessionRules.Limit(options, _options);
        if (CreationCooldown(now) is { } retryAfter)
        {
            return new SessionCreateResult(null, LimitReached: false, retryAfter);
        }

        var removed = await PruneAsync(now);
        if (Sessions.Count >= limit && policy == SessionLimitPolicy.RejectNew)
        {
            if (removed > 0)
            {
                await SaveAsync(-removed);
            }

            Log.LimitRejected(_logger, limit);
            return new SessionCreateResult(null, LimitReached: true, null);
        }

        while (Sessions.Count >= limit)
        {
            var oldest = Sessions.Values.MinBy(s => (s.CreatedAt, s.SessionId))!;
            await Lifecycle(oldest.SessionId).EndAsync(SessionEndReason.Evicted);
            Sessions.Remove(oldest.SessionId);
            removed++;
        }

        if (!await StoreNewSessionAsync(session))
        {
            // The session was stored but this index lost it (a crash between the two writes): adopt it.
            session = await Session(sessionId).PeekAsync() is { } stored && stored.UserId == UserId
                ? stored
                : throw new InvalidOperationException("A session with this id already exists.");
        }

        Sessions[sessionId] = SessionSummary.From(session);
        await SaveAsync(1 - removed);
        return new SessionCreateResult(session, LimitReached: false, null);
    }

    /// <summary>
    /// Counts this create in the creation-burst window. Sessions created unusually fast (credential
    /// stuffing) are flagged; with policy <see cref="SignalPolicy.Throttle"/> the user gets no new session
    /// until the cool-down ends. Returns how long to wait, or null to go ahead.
    /// </summary>
    private TimeSpan? CreationCooldown(DateTimeOffset now)
    {
        var signals = _options.Signals;
        if (now < _creationCooldownEnds)
        {
            return _creationCooldownEnds - now;
        }

        _recentCreates.Enqueue(now);
        while (now - _recentCreates.Peek() > signals.CreationBurstWindow)
        {
            _recentCreates.Dequeue();
        }

        if (_recentCreates.Count <= signals.CreationBurstThreshold || signals.CreationBurst == SignalPolicy.Ignore)
        {
            return null;
        }

        if (signals.CreationBurst != SignalPolicy.Throttle)
        {
            // Flag the burst once, when it crosses the threshold, not on every create that follows.
            if (_recentCreates.Count == signals.CreationBurstThreshold + 1)
            {
                _metrics.Signals.Add(1, new KeyValuePair<string, object?>("signal", "CreationBurst"));
                Log.CreationBurst(_logger, _recentCreates.Count, signals.CreationBurstWindow, signals.CreationBurst);
            }

            return null;
        }

        _metrics.Signals.Add(1, new KeyValuePair<string, object?>("signal", "CreationBurst"));
        Log.CreationBurst(_logger, _recentCreates.Count, signals.CreationBurstWindow, signals.CreationBurst);

        _recentCreates.Clear();
        _creationCooldownEnds = now + signals.CreationCooldown;
        return signals.CreationCooldown;
    }

    public Task<bool> EndSessionAsync(string sessionId, SessionEndReason reason, bool onlyIfListed) =>
        StorageConflicts.RetryAsync(() => EndSessionCoreAsync(sessionId, reason, onlyIfListed), ReloadAsync);

    private async Task<bool> EndSessionCoreAsync(string sessionId, SessionEndReason reason, bool onlyIfListed)
    {
        var listed = Sessions.ContainsKey(sessionId);
        if (onlyIfListed && !listed)
        {
            return false;
        }

        var wasLive = await Lifecycle(sessionId).EndAsync(reason);
        if (Sessions.Remove(sessionId))
        {
            await SaveAsync(-1);
        }

        return wasLive;
    }

    public Task<SessionInfo?> RotateSessionAsync(string oldSessionId, string newSessionId, TimeSpan gracePeriod) =>
        StorageConflicts.RetryAsync(() => RotateCoreAsync(oldSessionId, newSessionId, gracePeriod), ReloadAsync);

    private async Task<SessionInfo?> RotateCoreAsync(string oldSessionId, string newSessionId, TimeSpan gracePeriod)
    {
        var carried = await Lifecycle(oldSessionId).HandOverAsync(newSessionId, gracePeriod);
        var wasListed = Sessions.Remove(oldSessionId);
        if (carried is null)
        {
            if (wasListed)
            {
                await SaveAsync(-1);
            }

            return null;
        }

        if (!await StoreNewSessionAsync(carried))
        {
            throw new InvalidOperationException("A session with the new id already exists.");
        }

        Sessions[newSessionId] = SessionSummary.From(carried);
        await SaveAsync(wasListed ? 0 : 1);
        return carried;
    }

    public Task<SessionPage> ListAsync(int limit, string? cursor) =>
        StorageConflicts.RetryAsync(() => ListCoreAsync(limit, cursor), ReloadAsync);

    private async Task<SessionPage> ListCoreAsync(int limit, string? cursor)
    {
        if (limit is < 1 or > MaxPageSize)
        {
            throw new ArgumentOutOfRangeException(nameof(limit), $"The page size must be between 1 and {MaxPageSize}.");
        }

        var after = cursor is null ? default((DateTimeOffset, string)?) : ParseCursor(cursor);
        await PruneAndSaveAsync();

        var ordered = Sessions.Values
            .OrderBy(s => s.CreatedAt)
            .ThenBy(s => s.SessionId, StringComparer.Ordinal)
            .Where(s => after is not { } a || s.CreatedAt > a.Item1 || (s.CreatedAt == a.Item1 && string.CompareOrdinal(s.SessionId, a.Item2) > 0))
            .Take(limit + 1)
            .ToList();
        var page = ordered.Take(limit).ToImmutableArray();
        var next = ordered.Count > limit ? FormatCursor(page[^1]) : null;
        return new SessionPage(page, next);
    }

    public Task<int> EndAllAsync(string? exceptSessionId) =>
        StorageConflicts.RetryAsync(() => EndAllCoreAsync(exceptSessionId), ReloadAsync);

    private async Task<int> EndAllCoreAsync(string? exceptSessionId)
    {
        await PruneAndSaveAsync();
        var ending = Sessions.Keys.Where(id => id != exceptSessionId).ToList();
        if (ending.Count == 0)
        {
            return 0;
        }

        var results = await Task.WhenAll(ending.Select(id => Lifecycle(id).EndAsync(SessionEndReason.RevokedAll)));
        foreach (var id in ending)
        {
            Sessions.Remove(id);
        }

        await SaveAsync(-ending.Count);
        return results.Count(wasLive => wasLive);
    }

    public Task<int> CountAsync() =>
        StorageConflicts.RetryAsync(async () =>
        {
            await PruneAndSaveAsync();
            return Sessions.Count;
        }, ReloadAsync);

    public Task ReportActivityAsync(SessionSummary session)
    {
        ArgumentNullException.ThrowIfNull(session);
        if (Sessions.ContainsKey(session.SessionId))
        {
            Sessions[session.SessionId] = session;
            _activityUnsaved = true;
        }

        return Task.CompletedTask;
    }

    public Task ReportEndedAsync(string sessionId, SessionEndReason reason) =>
        StorageConflicts.RetryAsync(async () =>
        {
            if (Sessions.Remove(sessionId))
            {
                await SaveAsync(-1);
            }
        }, ReloadAsync);

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_activityUnsaved)
        {
            await SaveAsync(0);
        }
    }

    /// <summary>
    /// Drops entries of sessions that are no longer live. The index's expiry estimate is never later than
    /// the truth (the session reports its last access lazily), so only entries it believes expired need a
    /// look at the session itself; they are checked all at once.
    /// </summary>
    private async Task<int> PruneAsync(DateTimeOffset now)
    {
        var suspects = Sessions.Values.Where(s => SessionExpiry.IsExpired(now, s.ExpiresAt)).ToList();
        if (suspects.Count == 0)
        {
            return 0;
        }

        var current = await Task.WhenAll(suspects.Select(s => Session(s.SessionId).PeekAsync()));
        var removed = 0;
        for (var i = 0; i < suspects.Count; i++)
        {
            if (current[i] is { } live)
            {
                Sessions[live.SessionId] = SessionSummary.From(live);
                _activityUnsaved = true;
            }
            else
            {
                Sessions.Remove(suspects[i].SessionId);
                removed++;
            }
        }

        return removed;
    }

    private async Task PruneAndSaveAsync()
    {
        var removed = await PruneAsync(_time.GetUtcNow());
        if (removed > 0)
        {
            await SaveAsync(-removed);
        }
    }

    /// <summary>Writes the index (or deletes it when empty) and passes the change in live sessions to the counter.</summary>
    private async Task SaveAsync(int liveDelta)
    {
        if (Sessions.Count == 0)
        {
            if (_state.RecordExists)
            {
                await _state.ClearStateAsync();
            }
        }
        else
        {
            await _state.WriteStateAsync();
        }

        _activityUnsaved = false;
        if (liveDelta != 0)
        {
            _counter ??= GrainFactory.GetGrain<ISessionCounterGrain>(CounterShard(UserId));
            await _counter.AddAsync(liveDelta);
        }
    }

    /// <summary>Reads the index again after an etag conflict; unsaved activity reports are estimates and may go.</summary>
    private async Task ReloadAsync()
    {
        await _state.ReadStateAsync();
        _activityUnsaved = false;
    }

    /// <summary>
    /// Stores a new session (a create, or the target of a rotation) without activating its grain: a create
    /// neither reads what it is creating nor pays for an activation nobody may use soon. The write is
    /// conditional (no etag: the key must not exist), so a taken id is refused, not overwritten. The session
    /// grain reads the state when first called; an empty activation never lingers (SessionGrain.LeaveIfEmpty).
    /// Then the session is filed for its expiry check.
    /// </summary>
    private async Task<bool> StoreNewSessionAsync(SessionInfo session)
    {
        var state = new GrainState<SessionState>(new SessionState { Session = session });
        try
        {
            await _sessionStorage.WriteStateAsync(SessionGrain.StateName, SessionGrain.StorageIdOf(session.SessionId), state);
        }
        catch (InconsistentStateException)
        {
            return false;
        }

        await SessionExpiryBuckets.FileAsync(GrainFactory, session.SessionId, session.ExpiresAt, _options.ExpiryBucketWidth);
        Log.Created(_logger, SessionIds.ForLog(session.SessionId), session.IdleTimeout, session.AbsoluteExpiresAt);
        return true;
    }

    private ISessionGrain Session(string sessionId) => GrainFactory.Session(sessionId);

    private ISessionLifecycleGrain Lifecycle(string sessionId) => GrainFactory.SessionLifecycle(sessionId);

    /// <summary>The counter shard a user's changes go to.</summary>
    internal static int CounterShard(string userId) => (int)(StableHash.Of(userId) % ISessionCounterGrain.Shards);

    private static string FormatCursor(SessionSummary last) =>
        Base64Url.EncodeToString(Encoding.UTF8.GetBytes(
            last.CreatedAt.UtcTicks.ToString(CultureInfo.InvariantCulture) + "|" + last.SessionId));

    private static (DateTimeOffset, string) ParseCursor(string cursor)
    {
        try
        {
            var text = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(cursor));
            var bar = text.IndexOf('|', StringComparison.Ordinal);
            var ticks = long.Parse(text.AsSpan(0, bar), NumberStyles.None, CultureInfo.InvariantCulture);
            return (new DateTimeOffset(ticks, TimeSpan.Zero), text[(bar + 1)..]);
        }
        catch (Exception exception) when (exception is FormatException or ArgumentException or OverflowException)
        {
            throw new ArgumentException("The cursor is not one this store returned.", nameof(cursor), exception);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1001, LogLevel.Debug, "Session {Session} created, idle timeout {IdleTimeout}, absolute expiry {AbsoluteExpiresAt:O}.")]
        public static partial void Created(ILogger logger, string session, TimeSpan idleTimeout, DateTimeOffset absoluteExpiresAt);

        [LoggerMessage(2001, LogLevel.Information, "A new session was refused: the user is at the limit of {Limit} sessions.")]
        public static partial void LimitRejected(ILogger logger, int limit);

        [LoggerMessage(2002, LogLevel.Warning, "A user's sessions are created unusually fast ({Count} within {Window}); policy: {Policy}.")]
        public static partial void CreationBurst(ILogger logger, int count, TimeSpan window, SignalPolicy policy);
    }
}
