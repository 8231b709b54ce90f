using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace SessionGrains;

/// <summary>
/// One session. Validations are answered from memory; expiry rules live in <c>SessionGrain.Expiry.cs</c>, the
/// lazy last-access write in <c>SessionGrain.LastAccess.cs</c>, request signals in <c>SessionGrain.Signals.cs</c> and
/// the leases lent to frontends' near caches in <c>SessionGrain.Leases.cs</c>.
/// </summary>
[GrainType(GrainTypeNames.Session)]
internal sealed partial class SessionGrain : Grain, ISessionGrain, ISessionLifecycleGrain, IRemindable
{
    private readonly IPersistentState<SessionState> _state;
    private readonly SessionGrainsOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<SessionGrain> _logger;
    private readonly SessionGrainsMetrics _metrics;
    private readonly LastSiloShutdown _lastSiloShutdown;
    private readonly ISessionEventLog _events;

    // The live session is _session slid to _lastAccessedAt (see Live), which may be newer than the stored
    // one (see PersistAccessIfDueAsync). The slide is kept apart, as a value, so that the hot path (a
    // validation that only slides the session) stores no new object in this long-lived grain: every old
    // object pointing at a young one is scanned again by each gen-0 collection (the GC cost is measured in
    // the README's "Performance").
    private SessionInfo? _session;
    private DateTimeOffset _lastAccessedAt;

    public SessionGrain(
        [PersistentState(SessionRecord.StateName, StorageNames.Sessions)] IPersistentState<SessionState> state,
        IOptions<SessionGrainsOptions> options,
        SessionGrainsMetrics metrics,
        LastSiloShutdown lastSiloShutdown,
        ISessionEventLog events,
        ILogger<SessionGrain> logger)
    {
        _state = state;
        _options = options.Value;
        _time = _options.TimeProvider;
        _metrics = metrics;
        _lastSiloShutdown = lastSiloShutdown;
        _events = events;
        _logger = logger;
    }

    private string SessionId => this.GetPrimaryKeyString();

    /// <summary>The live session, with its latest last access; a fresh copy when it slid since it was remembered.</summary>
    private SessionInfo? Live =>
        _session is { } session && session.LastAccessedAt != _lastAccessedAt ? session with { LastAccessedAt = _lastAccessedAt } : _session;

    private void Remember(SessionInfo? session)
    {
        _session = session;
        _lastAccessedAt = session?.LastAccessedAt ?? default;
    }

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        Remember(_state.State.Session);
        NotePredecessorLeases();
        return Task.CompletedTask;
    }

    public Task<SessionInfo?> ValidateAsync(ClientInfo? client)
    {
        // Checked here, not only in the client library: whoever calls the grain, no junk is kept as the last client. A client
        // equal to the last one seen was checked when it was kept, so the usual request pays one comparison, not a parse.
        if (client != _session?.LastSeenFrom)
        {
            client = ClientInfo.Normalize(client);
        }

        _metrics.Validations.Add(1);
        return StorageConflicts.RetryAsync(() => ValidateCoreAsync(client), ReloadAsync);
    }

    /// <param name="client">Where the request came from.</param>
    /// <param name="holder">The near cache asking for a lease, if any: its own lease is not recalled.</param>
    private async Task<SessionInfo?> ValidateCoreAsync(ClientInfo? client, ISessionCacheObserver? holder = null)
    {
        var now = _time.GetUtcNow();
        if (_session is not { } session)
        {
            return await ForwardDuringGraceAsync(client, now);
        }

        // The remembered record and the live slide, without copying the record: the observed session below is
        // the one copy this call makes (and returns).
        if (await IsExpiredAsync(now, holder))
        {
            await EndOnItsOwnAsync(SessionEndReason.Expired);
            return null;
        }

        var (observed, clientChanged, signals, raised, action) = ObserveRequest(session, client, now);
        PublishSignals(raised, now);
        if (action == SignalPolicy.Revoke)
        {
            await EndOnItsOwnAsync(SessionEndReason.SignalRevoked);
            return null;
        }

        if (action == SignalPolicy.Throttle)
        {
            // A throttled request neither slides the session nor counts as its last client.
            throw new SessionThrottledException("Too many requests for this session.", ThrottleRetryAfter(now));
        }

        if (clientChanged)
        {
            // Other frontends' copies show the old client: answering from them would hide the next change signal.
            await RecallLeasesAsync(except: holder);
            _session = observed;
        }

        _lastAccessedAt = now;
        await PersistAccessIfDueAsync(now);
        return signals == SessionSignals.None ? observed : observed with { Signals = signals };
    }

    public async Task<SessionInfo?> PeekAsync()
    {
        LeaveIfEmpty();
        return await LiveSessionAsync(_time.GetUtcNow());
    }

    public Task<SessionUpdateResult> UpdateAsync(SessionUpdate change, long? expectedVersion)
    {
        ArgumentNullException.ThrowIfNull(change);
        return StorageConflicts.RetryAsync(() => UpdateCoreAsync(change, expectedVersion), ReloadAsync);
    }

    public Task<LeasedUpdate> UpdateLeasedAsync(SessionUpdate change, long? expectedVersion, LeaseRequest lease)
    {
        ArgumentNullException.ThrowIfNull(change);
        ArgumentNullException.ThrowIfNull(lease.Holder);
        AccountCachedValidations(lease.Report); // once, outside the retry, as for a leased validation
        return StorageConflicts.RetryAsync(() => UpdateLeasedCoreAsync(change, expectedVersion, lease.Holder), ReloadAsync);
    }

    private async Task<LeasedUpdate> UpdateLeasedCoreAsync(SessionUpdate change, long? expectedVersion, ISessionCacheObserver holder)
    {
        var result = await UpdateCoreAsync(change, expectedVersion, holder);

        // A signal that lasts shows only on the grain's answers: the frontend asks again instead of holding a copy without it.
        if (result.Session is null || _options.LeaseDuration <= TimeSpan.Zero || LastingSignals() != SessionSignals.None)
        {
            return new LeasedUpdate(result, TimeSpan.Zero, 0);
        }

        await GrantAsync(holder);
        return new LeasedUpdate(result, _options.LeaseDuration, LeaseBudget());
    }

    /// <summary>Applies a change (if the version matches) after every lease holder but the updater has dropped its copy.</summary>
    /// <param name="change">The metadata, role or payload to write.</param>
    /// <param name="expectedVersion">The version the caller last read, or null to write regardless.</param>
    /// <param name="updater">A near cache that dropped its copy before it sent the change: the one holder not called back.</param>
    private async Task<SessionUpdateResult> UpdateCoreAsync(SessionUpdate change, long? expectedVersion, ISessionCacheObserver? updater = null)
    {
        var now = _time.GetUtcNow();
        var expired = await IsExpiredAsync(now);
        var session = Live;
        if (session is null || expired)
        {
            if (session is not null)
            {
                await EndOnItsOwnAsync(SessionEndReason.Expired);
            }

            LeaveIfEmpty();
            return new SessionUpdateResult(null, null);
        }

        if (expectedVersion is { } expected && expected != session.Version)
        {
            return new SessionUpdateResult(null, session.Version);
        }

        var updated = SessionRules.Apply(session, change, _options, now);
        await RecallLeasesAsync(except: updater);
        await WriteAsync(updated);
        return new SessionUpdateResult(updated, null);
    }

    public Task<bool> EndAsync(SessionEndReason reason) =>
        StorageConflicts.RetryAsync(() => EndCoreAsync(reason), ReloadAsync);

    private async Task<bool> EndCoreAsync(SessionEndReason reason)
    {
        var wasLive = await LiveSessionAsync(_time.GetUtcNow()) is not null;
        await ClearAsync();
        if (wasLive)
        {
            _metrics.SessionsEnded.Add(1, new KeyValuePair<string, object?>("reason", reason.ToString()));
        }

        Log.Ended(_logger, SessionIds.ForLog(SessionId), reason);
        return wasLive;
    }

    public Task<SessionInfo?> HandOverAsync(string newSessionId, TimeSpan gracePeriod) =>
        StorageConflicts.RetryAsync(() => HandOverCoreAsync(newSessionId, gracePeriod), ReloadAsync);

    private async Task<SessionInfo?> HandOverCoreAsync(string newSessionId, TimeSpan gracePeriod)
    {
        var now = _time.GetUtcNow();
        var live = await LiveSessionAsync(now);
        if (live is null)
        {
            LeaveIfEmpty();
            return null;
        }

        await RecallLeasesAsync();
        var carried = live with { SessionId = newSessionId, LastAccessedAt = now };
        if (SessionRules.GracePeriod(gracePeriod, _options) > TimeSpan.Zero)
        {
            // Keep a forwarding marker so requests already in flight with the old token still succeed.
            Remember(null);
            _state.State = new SessionState { RotatedTo = newSessionId, RotationGraceEndsAt = now + gracePeriod };
            await _state.WriteStateAsync();
            await FileForExpiryCheckAsync(_state.State.RotationGraceEndsAt);
        }
        else
        {
            await ClearAsync();
        }

        Log.Rotated(_logger, SessionIds.ForLog(SessionId), SessionIds.ForLog(newSessionId), gracePeriod);
        return carried;
    }

    /// <summary>
    /// Reads the stored state again after an etag conflict. A newer last access held in memory is kept:
    /// the slide happened, whichever activation wrote last.
    /// </summary>
    private async Task ReloadAsync()
    {
        var inMemory = Live;
        await _state.ReadStateAsync();
        var stored = _state.State.Session;
        Remember(stored is not null && inMemory is not null && inMemory.LastAccessedAt > stored.LastAccessedAt
            ? stored with { LastAccessedAt = inMemory.LastAccessedAt, LastSeenFrom = inMemory.LastSeenFrom }
            : stored);
    }

    /// <summary>
    /// With nothing stored, the activation goes after the current call. No empty activation lingers: the index
    /// stores new sessions without activating them, so an empty one would answer "not found" from stale memory.
    /// </summary>
    private void LeaveIfEmpty()
    {
        if (_session is null && _state.State.RotatedTo is null)
        {
            DeactivateOnIdle();
        }
    }

    /// <summary>The live session at <paramref name="now"/>, or null; exact even while frontends hold leases.</summary>
    private async ValueTask<SessionInfo?> LiveSessionAsync(DateTimeOffset now) =>
        _session is not null && !await IsExpiredAsync(now) ? Live : null;

    private async Task<SessionInfo?> ForwardDuringGraceAsync(ClientInfo? client, DateTimeOffset now)
    {
        if (_state.State.RotatedTo is not { } successor)
        {
            LeaveIfEmpty();
            return null;
        }

        if (now >= _state.State.RotationGraceEndsAt)
        {
            await ClearAsync();
            return null;
        }

        return await GrainFactory.Session(successor).ValidateAsync(client);
    }

    private async Task WriteAsync(SessionInfo session)
    {
        _state.State.Session = session;
        _state.State.LeasesUntil = LeaseHorizon();
        await _state.WriteStateAsync();
        Remember(session);
    }

    private static partial class Log
    {
        [LoggerMessage(1002, LogLevel.Debug, "Session {Session} ended: {Reason}.")]
        public static partial void Ended(ILogger logger, string session, SessionEndReason reason);

        [LoggerMessage(1003, LogLevel.Debug, "Session {Session} rotated to {Successor}, grace {GracePeriod}.")]
        public static partial void Rotated(ILogger logger, string session, string successor, TimeSpan gracePeriod);

        [LoggerMessage(1004, LogLevel.Debug, "Session {Session} ended on its own ({Reason}) and was cleaned up.")]
        public static partial void EndedOnItsOwn(ILogger logger, string session, SessionEndReason reason);

        [LoggerMessage(1005, LogLevel.Warning, "Session {Session} could not write its last access time on deactivation.")]
        public static partial void DeactivationWriteFailed(ILogger logger, Exception exception, string session);
    }
}
