using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace SessionGrains;

/// <summary>
/// A frontend's near cache: validations answered from this process's memory while the session grain lends a
/// lease, the grain's answer otherwise (<see cref="IValidationPath"/> behind it). The grain stays the single
/// writer: it calls <see cref="RecallAsync"/> before any change returns, so after a revoke returns no frontend
/// accepts the token, and after an update returns none answers the old version.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>A lease is timed from before the request was sent (<see cref="Stopwatch"/>), so it runs out here no later
/// than at the grain, whatever the clocks say. A frontend cut off from the cluster answers until its leases end,
/// then fails like any call.</item>
/// <item>Expiry is checked on every answer with the session's own idle and absolute rules on this process's clock;
/// answers slide the session here, and renewals and recalls report them to the grain (<see cref="LeaseReport"/>),
/// so a session used only through this cache does not expire at the grain.</item>
/// <item>A request whose client differs from the one the grain last saw goes to the grain (signals), and so does
/// every validation past the lease's budget (burst counting).</item>
/// <item>A recall that overtakes the answer carrying a lease must win: a validation marks its session as asked
/// (<see cref="Asking"/>) and installs its answer only over that mark, which a recall removes.</item>
/// </list>
/// </remarks>
internal sealed class SessionNearCache : IValidationPath, ISessionCacheObserver, IDisposable
{
    /// <summary>Signals that last while a state lasts; the others are raised once, by the grain's answer.</summary>
    private const SessionSignals LastingSignals = SessionSignals.RequestBurst | SessionSignals.ManyNetworks;

    private readonly ConcurrentDictionary<string, Slot> _slots = new(StringComparer.Ordinal);
    private readonly IGrainFactory _grains;
    private readonly IValidationPath _grainPath;
    private readonly NearCacheOptions _options;
    private readonly TimeProvider _time;
    private readonly NearCacheMetrics _metrics;
    private readonly ITimer _renewals;
    private readonly Lock _referenceLock = new();
    private ISessionCacheObserver? _reference;
    private long _count;
    private long _bytes;
    private long _leaseTicks = Stopwatch.Frequency; // the latest lease length seen, sets how often renewals run
    private int _evicting;
    private int _renewing;

    /// <param name="grains">Makes the reference the grains call back.</param>
    /// <param name="grainPath">How a validation reaches its grain (straight or batched).</param>
    /// <param name="options">Bounds.</param>
    /// <param name="time">The clock expiry is checked on (leases are timed on <see cref="Stopwatch"/>).</param>
    /// <param name="meterFactory">For the <c>sessiongrains.nearcache.*</c> instruments.</param>
    public SessionNearCache(IGrainFactory grains, IValidationPath grainPath, NearCacheOptions options, TimeProvider time, IMeterFactory meterFactory)
    {
        _grains = grains;
        _grainPath = grainPath;
        _options = options;
        _time = time;
        _metrics = new NearCacheMetrics(meterFactory, this);
        _renewals = TimeProvider.System.CreateTimer(_ => RenewInUse(), null, RenewalPeriod, RenewalPeriod);
    }

    /// <summary>How validations this cache cannot answer reach their grains.</summary>
    internal IValidationPath GrainPath => _grainPath;

    /// <summary>Sessions kept with a lease (answers in flight not counted).</summary>
    public long Count => Volatile.Read(ref _count);

    /// <summary>Estimated bytes the kept sessions take.</summary>
    public long Bytes => Volatile.Read(ref _bytes);

    // Sixteen passes a lease, each renewing the leases past their own random renewal point (RenewFrom): renewals go
    // out as a trickle, not as a burst of every session in use at once that queues ahead of validations.
    private TimeSpan RenewalPeriod => TimeSpan.FromSeconds(Volatile.Read(ref _leaseTicks) / 16.0 / Stopwatch.Frequency);

    /// <summary>The grains' handle on this cache, made once, when the first lease is asked for.</summary>
    private ISessionCacheObserver Reference
    {
        get
        {
            if (_reference is { } reference)
            {
                return reference;
            }

            lock (_referenceLock)
            {
                return _reference ??= _grains.CreateObjectReference<ISessionCacheObserver>(this);
            }
        }
    }

    /// <summary>The answer from memory, when a live lease covers it; no allocation but the answer itself.</summary>
    public bool TryAnswer(string sessionId, ClientInfo? client, out SessionInfo? session)
    {
        if (_slots.TryGetValue(sessionId, out var slot) && slot is Leased leased && leased.TryAnswer(client, _time.GetUtcNow(), out session))
        {
            _metrics.Hits.Add(1);
            return true;
        }

        session = null;
        return false;
    }

    /// <summary>
    /// A validation memory could not answer: <see cref="SessionStore"/> tries <see cref="TryAnswer"/> first, outside
    /// its retry policy and tracing, and comes here only on a miss, so the cache is not looked up twice.
    /// </summary>
    public Task<SessionInfo?> ValidateAsync(string sessionId, ClientInfo? client) => AskGrainAsync(sessionId, client);

    public Task<LeasedValidation> ValidateLeasedAsync(string sessionId, ClientInfo? client, LeaseRequest lease) =>
        _grainPath.ValidateLeasedAsync(sessionId, client, lease);

    /// <summary>A miss: the grain answers, and its lease (if any) is kept unless a recall came in between.</summary>
    private async Task<SessionInfo?> AskGrainAsync(string sessionId, ClientInfo? client)
    {
        _metrics.Misses.Add(1);
        var asking = new Asking();
        if (!TryPlace(sessionId, asking, out var previous))
        {
            // An update from this process is under way: only its answer may be kept.
            return (await _grainPath.ValidateLeasedAsync(sessionId, client, new LeaseRequest(Reference, default)).ConfigureAwait(false)).Session;
        }

        var report = (previous as Leased)?.TakeReport() ?? default;
        var sentAt = Stopwatch.GetTimestamp();
        LeasedValidation answer;
        try
        {
            answer = await _grainPath.ValidateLeasedAsync(sessionId, client, new LeaseRequest(Reference, report)).ConfigureAwait(false);
        }
        catch
        {
            RemoveIfStill(sessionId, asking);
            throw;
        }

        Keep(sessionId, asking, answer.Session, client, sentAt, answer.Lease, answer.Budget, answer.SignalsUntil);
        return answer.Session;
    }

    /// <summary>
    /// An update from this process: its copy is dropped before the change is sent (so the grain need not call it
    /// back), and the updated session is kept with the lease that comes in the same answer, unless a recall came in
    /// between. While it is under way no other answer for the session is kept, as it may carry an older version.
    /// </summary>
    public async Task<SessionUpdateResult> UpdateAsync(string sessionId, SessionUpdate change, long? expectedVersion)
    {
        var grain = _grains.Session(sessionId);
        var updating = new Updating();
        if (!TryPlace(sessionId, updating, out var previous))
        {
            // Another update from here is under way: this one calls every holder back, this process included.
            return await grain.UpdateAsync(change, expectedVersion).ConfigureAwait(false);
        }

        var report = (previous as Leased)?.TakeReport() ?? default;
        var sentAt = Stopwatch.GetTimestamp();
        LeasedUpdate answer;
        try
        {
            answer = await grain.UpdateLeasedAsync(change, expectedVersion, new LeaseRequest(Reference, report)).ConfigureAwait(false);
        }
        catch
        {
            RemoveIfStill(sessionId, updating);
            throw;
        }

        Keep(sessionId, updating, answer.Result.Session, client: null, sentAt, answer.Lease, answer.Budget, signalsUntil: null);
        return answer.Result;
    }

    /// <summary>Keeps an answer with its lease in place of <paramref name="mark"/>, if the mark is still there (no recall came); else drops the mark.</summary>
    private void Keep(string sessionId, Slot mark, SessionInfo? session, ClientInfo? client, long sentAt, TimeSpan lease, int budget, DateTimeOffset? signalsUntil)
    {
        if (session is not null && budget > 0 && lease > TimeSpan.Zero && session.SessionId == sessionId)
        {
            var endsAt = LeaseEnd(sentAt, lease);
            var leased = new Leased(session, client ?? session.LastSeenFrom, endsAt, RenewFrom(endsAt), budget, signalsUntil);
            if (_slots.TryUpdate(sessionId, leased, mark))
            {
                Added(leased);
                return;
            }
        }

        RemoveIfStill(sessionId, mark);
    }

    /// <summary>Called by a session grain before its session changes: drop it and report what was answered from memory.</summary>
    public Task<LeaseReport> RecallAsync(string sessionId)
    {
        _metrics.Recalls.Add(1);
        if (_slots.TryRemove(sessionId, out var slot))
        {
            Removed(slot);
            if (slot is Leased leased)
            {
                return Task.FromResult(leased.TakeReport());
            }
        }

        return Task.FromResult(default(LeaseReport));
    }

    public void Dispose()
    {
        _renewals.Dispose();
    }

    /// <summary>
    /// Renews the leases of sessions answered from memory since they were last reported and past their renewal
    /// point (the batching path sends each pass's together); forgets sessions whose lease ended long ago.
    /// </summary>
    private void RenewInUse()
    {
        if (Interlocked.Exchange(ref _renewing, 1) == 1)
        {
            return;
        }

        try
        {
            var now = Stopwatch.GetTimestamp();
            var leaseTicks = Volatile.Read(ref _leaseTicks);
            foreach (var (sessionId, slot) in _slots)
            {
                if (slot is not Leased leased)
                {
                    continue;
                }

                var endsAt = leased.LeaseEndsAt;
                if (now > endsAt + leaseTicks)
                {
                    RemoveIfStill(sessionId, leased);
                }
                else if (now >= leased.RenewFrom && leased.HasUnreported)
                {
                    _ = RenewAsync(sessionId, leased);
                }
            }
        }
        finally
        {
            Volatile.Write(ref _renewing, 0);
        }
    }

    private async Task RenewAsync(string sessionId, Leased leased)
    {
        _metrics.Renewals.Add(1);
        var sentAt = Stopwatch.GetTimestamp();
        try
        {
            var report = leased.TakeReport(out var reportedUpTo);
            var answer = await _grainPath.ValidateLeasedAsync(sessionId, null, new LeaseRequest(Reference, report, Renewal: true)).ConfigureAwait(false);

            // Renewed in place only while this is still the kept copy: a recall or a newer answer replaced it otherwise.
            if (answer is { Session: { } session, Budget: > 0 } && answer.Lease > TimeSpan.Zero && session.Version == leased.Session.Version
                && _slots.TryGetValue(sessionId, out var current) && ReferenceEquals(current, leased))
            {
                var endsAt = LeaseEnd(sentAt, answer.Lease);
                leased.Renew(session, endsAt, RenewFrom(endsAt), answer.Budget, answer.SignalsUntil, reportedUpTo);
            }
            else
            {
                RemoveIfStill(sessionId, leased);
            }
        }
        catch (Exception)
        {
            // The lease runs out on its own; the next validation asks the grain and fails or succeeds there.
        }
    }

    private long LeaseEnd(long sentAt, TimeSpan lease)
    {
        var ticks = (long)(lease.TotalSeconds * Stopwatch.Frequency);
        if (Interlocked.Exchange(ref _leaseTicks, ticks) != ticks)
        {
            _renewals.Change(RenewalPeriod, RenewalPeriod);
        }

        return sentAt + ticks;
    }

    /// <summary>When a lease ending at <paramref name="endsAt"/> is due for renewal: at a random point between half and 30% of it left.</summary>
    private long RenewFrom(long endsAt) => endsAt - (long)(Volatile.Read(ref _leaseTicks) * (0.3 + 0.2 * Random.Shared.NextDouble()));

    /// <summary>
    /// Puts <paramref name="slot"/> in place of whatever the session had (<paramref name="previous"/>), unless an
    /// update from this process is under way.
    /// </summary>
    private bool TryPlace(string sessionId, Slot slot, out Slot? previous)
    {
        while (true)
        {
            if (_slots.TryGetValue(sessionId, out var old))
            {
                if (old is Updating)
                {
                    previous = null;
                    return false;
                }

                if (_slots.TryUpdate(sessionId, slot, old))
                {
                    Removed(old);
                    previous = old;
                    return true;
                }
            }
            else if (_slots.TryAdd(sessionId, slot))
            {
                previous = null;
                return true;
            }
        }
    }

    private void RemoveIfStill(string sessionId, Slot slot)
    {
        if (_slots.TryRemove(KeyValuePair.Create(sessionId, slot)))
        {
            Removed(slot);
        }
    }

    private void Added(Leased leased)
    {
        Interlocked.Increment(ref _count);
        Interlocked.Add(ref _bytes, leased.Bytes);
        if ((Count > _options.MaxEntries || Bytes > _options.MaxBytes) && Interlocked.Exchange(ref _evicting, 1) == 0)
        {
            _ = Task.Run(EvictLeastRecentlyUsed);
        }
    }

    private void Removed(Slot slot)
    {
        if (slot is Leased leased)
        {
            Interlocked.Decrement(ref _count);
            Interlocked.Add(ref _bytes, -leased.Bytes);
        }
    }

    /// <summary>Drops the least recently used sessions until a tenth below both bounds (their leases lapse at the grain).</summary>
    private void EvictLeastRecentlyUsed()
    {
        try
        {
            var kept = _slots.Where(s => s.Value is Leased).Select(s => (s.Key, Leased: (Leased)s.Value)).ToArray();
            Array.Sort(kept, static (a, b) => a.Leased.LastUsed.CompareTo(b.Leased.LastUsed));
            foreach (var (sessionId, leased) in kept)
            {
                if (Count <= _options.MaxEntries * 9L / 10 && Bytes <= _options.MaxBytes * 9 / 10)
                {
                    break;
                }

                RemoveIfStill(sessionId, leased);
                _metrics.Evictions.Add(1);
            }
        }
        finally
        {
            Volatile.Write(ref _evicting, 0);
        }
    }

    /// <summary>What the cache holds for a session: a validation under way, or a leased copy.</summary>
    private abstract class Slot;

    /// <summary>A validation is asking the grain; its answer is kept only if this mark is still in place.</summary>
    private sealed class Asking : Slot;

    /// <summary>An update from this process is under way; only its answer may be kept, and only if this mark is still in place.</summary>
    private sealed class Updating : Slot;

    /// <summary>A session as its grain answered it, with the lease that lets this process answer for it.</summary>
    private sealed class Leased(SessionInfo session, ClientInfo? client, long leaseEndsAt, long renewFrom, int budget, DateTimeOffset? signalsUntil) : Slot
    {
        private SessionInfo _session = session with { Signals = session.Signals & LastingSignals };
        private long _signalsUntilTicks = signalsUntil?.UtcTicks ?? long.MaxValue;
        private long _leaseEndsAt = leaseEndsAt;
        private long _renewFrom = renewFrom;
        // Answers from memory are counted, never reset: the lease allows answers up to _allowed, and a renewal's
        // budget starts at the count its report was taken at, so answers made while it was on the wire use it up.
        private long _answered;
        private long _reportedUpTo;
        private long _allowed = budget;
        private long _lastAnsweredTicks;

        public SessionInfo Session => Volatile.Read(ref _session);

        public long LeaseEndsAt => Volatile.Read(ref _leaseEndsAt);

        /// <summary>From when the renewal pass renews this lease (if it was used).</summary>
        public long RenewFrom => Volatile.Read(ref _renewFrom);

        public long LastUsed { get; private set; } = Environment.TickCount64;

        public long Bytes { get; } = EstimateBytes(session);

        public bool HasUnreported => Volatile.Read(ref _answered) > Volatile.Read(ref _reportedUpTo);

        public bool TryAnswer(ClientInfo? requestClient, DateTimeOffset now, out SessionInfo? answer)
        {
            answer = null;
            var session = Session;
            if (Stopwatch.GetTimestamp() >= LeaseEndsAt || (requestClient is not null && requestClient != client))
            {
                return false;
            }

            var answeredTicks = Volatile.Read(ref _lastAnsweredTicks);
            var lastAccess = answeredTicks > session.LastAccessedAt.UtcTicks ? new DateTimeOffset(answeredTicks, TimeSpan.Zero) : session.LastAccessedAt;
            if (SessionExpiry.IsExpired(now, SessionExpiry.ExpiresAt(lastAccess, session.IdleTimeout, session.AbsoluteExpiresAt))
                || now.UtcTicks >= Volatile.Read(ref _signalsUntilTicks)
                || !TryCountAnswer())
            {
                return false;
            }

            for (var seen = answeredTicks; seen < now.UtcTicks;)
            {
                var was = Interlocked.CompareExchange(ref _lastAnsweredTicks, now.UtcTicks, seen);
                seen = was == seen ? now.UtcTicks : was;
            }

            LastUsed = Environment.TickCount64;
            answer = session with { LastAccessedAt = now };
            return true;
        }

        /// <summary>Counts one answer from memory, if the budget allows it.</summary>
        private bool TryCountAnswer()
        {
            while (true)
            {
                var answered = Volatile.Read(ref _answered);
                if (answered >= Volatile.Read(ref _allowed))
                {
                    return false;
                }

                if (Interlocked.CompareExchange(ref _answered, answered + 1, answered) == answered)
                {
                    return true;
                }
            }
        }

        /// <summary>The answers from memory not yet reported, handed over once; <paramref name="upTo"/> is the count it was taken at (for <see cref="Renew"/>).</summary>
        public LeaseReport TakeReport(out long upTo)
        {
            while (true)
            {
                var reported = Volatile.Read(ref _reportedUpTo);
                upTo = Volatile.Read(ref _answered);
                if (upTo <= reported)
                {
                    upTo = reported;
                    return default;
                }

                if (Interlocked.CompareExchange(ref _reportedUpTo, upTo, reported) == reported)
                {
                    return new LeaseReport((int)(upTo - reported), new DateTimeOffset(Volatile.Read(ref _lastAnsweredTicks), TimeSpan.Zero));
                }
            }
        }

        public LeaseReport TakeReport() => TakeReport(out _);

        /// <summary>
        /// Extends the lease with the grain's answer to the report taken at <paramref name="reportedUpTo"/>: its budget
        /// counts from there, so the answers made from memory while the renewal was on the wire are part of it.
        /// </summary>
        public void Renew(SessionInfo session, long leaseEndsAt, long renewFrom, int budget, DateTimeOffset? signalsUntil, long reportedUpTo)
        {
            Volatile.Write(ref _renewFrom, renewFrom);
            Volatile.Write(ref _session, session with { Signals = session.Signals & LastingSignals });
            Volatile.Write(ref _signalsUntilTicks, signalsUntil?.UtcTicks ?? long.MaxValue);
            Volatile.Write(ref _allowed, reportedUpTo + budget);
            Volatile.Write(ref _leaseEndsAt, leaseEndsAt);
        }

        /// <summary>A rough size: object headers and fields, strings at two bytes a character, the payload.</summary>
        private static long EstimateBytes(SessionInfo session)
        {
            static long Text(string? s) => s is null ? 0 : 24 + 2L * s.Length;
            static long Client(ClientInfo? c) => c is null ? 0 : 32 + Text(c.IpAddress) + Text(c.UserAgent);
            var bytes = 400 + Text(session.SessionId) * 2 + Text(session.UserId) + Text(session.Role)
                + Client(session.CreatedFrom) + Client(session.LastSeenFrom) + session.Payload.Length;
            foreach (var (key, value) in session.Metadata)
            {
                bytes += 48 + Text(key) + Text(value);
            }

            return bytes;
        }
    }
}

/// <summary>The near cache's instruments on the <c>SessionGrains</c> meter of the process it runs in.</summary>
internal sealed class NearCacheMetrics
{
    // Owned by the meter factory, which may share it with the silo's instruments: never disposed here.
    private readonly Meter _meter;

    public NearCacheMetrics(IMeterFactory meterFactory, SessionNearCache cache)
    {
        // The same meter name as the silo's instruments: one place to look, whichever process answers.
        _meter = meterFactory.Create("SessionGrains");
        Hits = _meter.CreateCounter<long>("sessiongrains.nearcache.hits", unit: "{validation}", description: "Validations answered from the near cache's memory under a lease.");
        Misses = _meter.CreateCounter<long>("sessiongrains.nearcache.misses", unit: "{validation}", description: "Validations the near cache sent to their session grain (no live lease, another client, budget spent).");
        Renewals = _meter.CreateCounter<long>("sessiongrains.nearcache.renewals", unit: "{lease}", description: "Leases of sessions in use renewed before they ran out.");
        Recalls = _meter.CreateCounter<long>("sessiongrains.nearcache.recalls", unit: "{recall}", description: "Sessions a grain called back before changing them (invalidations).");
        Evictions = _meter.CreateCounter<long>("sessiongrains.nearcache.evictions", unit: "{session}", description: "Sessions dropped to stay within the entry and memory bounds.");
        _meter.CreateObservableGauge("sessiongrains.nearcache.entries", () => cache.Count, unit: "{session}", description: "Sessions kept with a lease.");
        _meter.CreateObservableGauge("sessiongrains.nearcache.size", () => cache.Bytes, unit: "By", description: "Estimated memory of the sessions kept.");
    }

    public Counter<long> Hits { get; }

    public Counter<long> Misses { get; }

    public Counter<long> Renewals { get; }

    public Counter<long> Recalls { get; }

    public Counter<long> Evictions { get; }
}
