using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>
/// The session event log under faults, with real processes (Silo executables on redis-server with AOF): a bounded load
/// of creates, rotations, logouts, revokes and sign-outs everywhere, a silo killed or Redis killed and restarted on its
/// data in the middle of it, then the whole log read back through <see cref="ISessionStore.SubscribeAsync"/> and
/// reconciled with what the cluster acknowledged (<see cref="EventReconciliation"/>).
/// </summary>
[Trait("Category", "Faults")]
[Collection(FaultCollection.Name)]
public sealed class EventFaultTests
{
    private const int MaxOperations = 20_000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Killing_a_silo_under_load_loses_no_event_of_an_acknowledged_change_and_invents_none()
    {
        var (store, cluster) = await FaultyStores.StartAsync(FaultyStores.Redis, 3);
        var redis = (RedisServer)store;
        await using var _ = redis;
        await using var __ = cluster;
        var load = new EventLoad(cluster.Store, workers: 6, MaxOperations);

        var running = load.RunAsync(TimeSpan.FromSeconds(14), Ct);
        await Task.Delay(TimeSpan.FromSeconds(4), Ct);
        var killedAt = load.Elapsed;
        cluster.Silos[2].Kill();
        await running;
        await cluster.WaitForActiveSilosAsync(2, TimeSpan.FromSeconds(30));
        await load.SignOutEveryUserAsync(TimeSpan.FromSeconds(20), Ct);

        // Every acknowledged change is demanded: a silo kill loses nothing written.
        var result = await ReconcileAsync(cluster, redis, load, demanded: _ => true);
        FaultFigures.Record("events: silo kill -9 (3 silos, 6 workers, 14 s)", result.Figures(load) + $"; killed at {killedAt.TotalSeconds:0.0} s");
        result.AssertClean(load, killedAt);
        Assert.Equal(0, load.FoundGone);
    }

    [Fact]
    public async Task Redis_killed_and_restarted_on_its_data_keeps_the_events_of_everything_acknowledged_a_second_before()
    {
        var (store, cluster) = await FaultyStores.StartAsync(FaultyStores.Redis, 2);
        var redis = (RedisServer)store;
        await using var _ = redis;
        await using var __ = cluster;
        var load = new EventLoad(cluster.Store, workers: 6, MaxOperations);

        var running = load.RunAsync(TimeSpan.FromSeconds(16), Ct);
        await Task.Delay(TimeSpan.FromSeconds(5), Ct);
        var crashedAt = load.Elapsed;
        redis.Kill();
        await Task.Delay(TimeSpan.FromSeconds(2), Ct);
        await redis.RestartAsync();
        var restartedAt = load.Elapsed;
        await running;
        await load.SignOutEveryUserAsync(TimeSpan.FromSeconds(20), Ct);

        // appendfsync everysec: what Redis loses of the last second before the kill it loses for state and events
        // alike, so of what was acknowledged before the kill only what was more than a second before it is demanded.
        // What was acknowledged after the restart was written after it (a write whose reply the kill cut off fails),
        // so it is demanded too; an end only of a session whose creation or rotation is.
        var cutoff = crashedAt - TimeSpan.FromSeconds(1);
        bool Demanded(TimeSpan at) => at < cutoff || at > restartedAt;
        var result = await ReconcileAsync(cluster, redis, load, Demanded);

        // For the figures: how many of the changes acknowledged in the window have their events all the same (a
        // killed process loses nothing the kernel has; the second is what a machine's crash can lose).
        var window = EventReconciliation.Run(load.Operations, result.Events, load.Tokens, at => !Demanded(at));
        FaultFigures.Record("events: redis kill -9, restart after 2 s on its AOF (2 silos, 6 workers, 16 s)",
            result.Figures(load) + $"; killed at {crashedAt.TotalSeconds:0.0} s, back at {restartedAt.TotalSeconds:0.0} s; " +
            $"demanded: acknowledged before {cutoff.TotalSeconds:0.0} s or after {restartedAt.TotalSeconds:0.0} s; " +
            $"of the {window.Demanded} events of changes acknowledged in between, {window.Demanded - window.Missing} are in the log");
        result.AssertClean(load, crashedAt);
        Assert.All(cluster.Silos, s => Assert.True(s.IsRunning));
    }

    /// <summary>
    /// The reconciliation itself, on a log made up here: clean for the true log, and for each way a log can be wrong
    /// it says so (the fault scenarios pass only if it can fail).
    /// </summary>
    [Fact]
    public void The_reconciliation_flags_each_way_the_log_can_be_wrong()
    {
        const string User = "ev-0-0";
        var at = DateTimeOffset.UnixEpoch;
        EventOperation Acknowledged(EventOperationKind kind, string? sessionId, double seconds) =>
            new(kind, User, sessionId) { AcknowledgedAt = TimeSpan.FromSeconds(seconds) };
        EventOperation[] operations =
        [
            Acknowledged(EventOperationKind.Create, "session-a", 1),
            Acknowledged(EventOperationKind.Create, "session-b", 1.1),
            Acknowledged(EventOperationKind.Create, "session-c", 1.2),
            new(EventOperationKind.Rotate, User, "session-a") { AcknowledgedAt = TimeSpan.FromSeconds(2), NewSessionId = "session-a2" },
            new(EventOperationKind.Delete, User, "session-b") { AcknowledgedAt = TimeSpan.FromSeconds(3), Ended = true },
            new(EventOperationKind.RevokeAll, User, null) { AcknowledgedAt = TimeSpan.FromSeconds(4), Ending = ["session-a2"], Except = "session-c", EndedCount = 1 },
            new(EventOperationKind.Create, User, null) { Error = "SessionStoreUnavailableException" },
            new(EventOperationKind.RevokeAll, User, null) { AcknowledgedAt = TimeSpan.FromSeconds(5), Ending = ["session-c"], EndedCount = 1, IsSignOutAfterLoad = true },
        ];
        string[] tokens = ["sg1_k1_Zm9v_YmFyYmF6cXV4", "sg1_k1_b3RoZXItdG9rZW4"];
        SessionEvent Event(SessionEventKind kind, string sessionId, int position) =>
            new(kind, User, sessionId, at) { Position = $"1000-{position}" };
        List<SessionEvent> TrueLog() =>
        [
            Event(SessionEventKind.Created, "session-a", 0),
            Event(SessionEventKind.Created, "session-b", 1),
            Event(SessionEventKind.Created, "session-c", 2),
            Event(SessionEventKind.Rotated, "session-a2", 3) with { PreviousSessionId = "session-a" },
            Event(SessionEventKind.Ended, "session-b", 4) with { EndReason = SessionEndReason.Deleted },
            Event(SessionEventKind.Ended, "session-a2", 5) with { EndReason = SessionEndReason.RevokedAll },
            Event(SessionEventKind.Ended, "session-c", 6) with { EndReason = SessionEndReason.RevokedAll },
        ];
        List<string> Problems(List<SessionEvent> log, Func<TimeSpan, bool>? demanded = null) =>
            EventReconciliation.Run(operations, log, tokens, demanded ?? (_ => true)).Problems;

        Assert.Empty(Problems(TrueLog()));

        // A failed create may have been applied: its session is allowed, once.
        var withFailedCreate = TrueLog();
        withFailedCreate.Add(Event(SessionEventKind.Created, "session-x", 7));
        withFailedCreate.Add(Event(SessionEventKind.Ended, "session-x", 8) with { EndReason = SessionEndReason.RevokedAll });
        Assert.Empty(Problems(withFailedCreate));
        withFailedCreate.Add(Event(SessionEventKind.Created, "session-y", 9));
        Assert.Contains(Problems(withFailedCreate), p => p.Contains("never created", StringComparison.Ordinal));

        // Only what is demanded is missed: the delete at 3 s, without its event, passes when only 2.5 s are demanded.
        var withoutDelete = TrueLog();
        withoutDelete.RemoveAt(4);
        Assert.Contains(Problems(withoutDelete), p => p.StartsWith("missing: Ended (Deleted)", StringComparison.Ordinal));
        Assert.Empty(Problems(withoutDelete, demanded: t => t < TimeSpan.FromSeconds(2.5)));

        (string Expected, Action<List<SessionEvent>> Break)[] broken =
        [
            ("missing: one Created", log => log.RemoveAt(1)),
            ("missing: Rotated", log => log.RemoveAt(3)),
            ("missing: Ended (RevokedAll)", log => log.RemoveAt(5)),
            ("missing: Ended (Deleted)", log => log[4] = log[4] with { EndReason = SessionEndReason.Revoked }),
            ("a second Created", log => log.Add(Event(SessionEventKind.Created, "session-a", 7))),
            ("already Ended", log => log.Add(Event(SessionEventKind.Ended, "session-b", 7) with { EndReason = SessionEndReason.Expired })),
            ("delivered twice", log => log.Add(log[2])),
            ("out of order", log => (log[1], log[2]) = (log[2], log[1])),
            ("no earlier Created", log => log.Insert(0, log[4] with { Position = "999-0" })),
            ("no rotation of the test", log => log[3] = log[3] with { SessionId = "session-z" }),
            ("missing: Ended (RevokedAll)", log => log[6] = log[6] with { EndReason = SessionEndReason.Evicted }),
            ("no end event", log => log.RemoveAt(6)),
            ("a user the test never used", log => log.Add(Event(SessionEventKind.Created, "session-x", 7) with { UserId = "someone-else" })),
            ("tokens issued appear", log => log[0] = log[0] with { SessionId = "Zm9v_YmFyYmF6cXV4" }),
            ("token-shaped", log => log.Add(Event(SessionEventKind.Created, "sg1_k2_aGVsbG8", 7))),
        ];
        foreach (var (expected, breakIt) in broken)
        {
            var log = TrueLog();
            breakIt(log);
            var problems = Problems(log);
            Assert.True(problems.Any(p => p.Contains(expected, StringComparison.Ordinal)), $"expected '{expected}', got: {string.Join("; ", problems)}");
        }
    }

    /// <summary>Reads the whole log through a subscription from the beginning and reconciles it with the load's record.</summary>
    private static async Task<EventReconciliation> ReconcileAsync(LocalCluster cluster, RedisServer redis, EventLoad load, Func<TimeSpan, bool> demanded)
    {
        var events = await ReadAllAsync(cluster.Store, idle: TimeSpan.FromSeconds(3), limit: TimeSpan.FromSeconds(30));

        // The stream itself, as a cross-check that the subscription delivered each entry once.
        var streamLength = await redis.Database.StreamLengthAsync(RedisSessionEvents.StreamKey(cluster.ServiceId));
        var result = EventReconciliation.Run(load.Operations, events, load.Tokens, demanded);
        if (streamLength != events.Count)
        {
            result.Problems.Add($"the stream holds {streamLength} entries but the subscription delivered {events.Count} events");
        }

        return result;
    }

    /// <summary>Every event the log retains, read until none has come for <paramref name="idle"/> (at most <paramref name="limit"/> in all).</summary>
    private static async Task<List<SessionEvent>> ReadAllAsync(ISessionStore store, TimeSpan idle, TimeSpan limit)
    {
        var events = new List<SessionEvent>();
        var watch = Stopwatch.StartNew();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        stop.CancelAfter(limit); // the first event may wait for the cluster to settle
        try
        {
            await foreach (var e in store.SubscribeAsync(afterPosition: SessionEvent.Beginning, cancellationToken: stop.Token))
            {
                events.Add(e);
                if (watch.Elapsed > limit)
                {
                    break;
                }

                stop.CancelAfter(idle);
            }
        }
        catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
        {
            // Caught up: nothing new for the idle time.
        }

        return events;
    }
}

/// <summary>What the test asked of the cluster.</summary>
internal enum EventOperationKind
{
    Create,
    Rotate,
    Delete,
    Revoke,
    RevokeAll,
}

/// <summary>One operation of an <see cref="EventLoad"/> and its outcome.</summary>
internal sealed class EventOperation(EventOperationKind kind, string userId, string? sessionId)
{
    public EventOperationKind Kind { get; } = kind;

    public string UserId { get; } = userId;

    /// <summary>The session created (once acknowledged), or the one rotated, deleted or revoked.</summary>
    public string? SessionId { get; set; } = sessionId;

    /// <summary>When the cluster answered (load clock); null when the call failed.</summary>
    public TimeSpan? AcknowledgedAt { get; set; }

    public string? Error { get; set; }

    /// <summary>When the call failed (load clock).</summary>
    public TimeSpan? FailedAt { get; set; }

    /// <summary>A rotation's new id; null when the rotation found no session.</summary>
    public string? NewSessionId { get; set; }

    /// <summary>A delete's or revoke's answer.</summary>
    public bool Ended { get; set; }

    /// <summary>A sign-out everywhere: the sessions the test held live then (but <see cref="Except"/>), and the count it answered.</summary>
    public IReadOnlyList<string> Ending { get; set; } = [];

    public string? Except { get; set; }

    public int EndedCount { get; set; }

    /// <summary>The sign-out everywhere of every user after the load (<see cref="EventLoad.SignOutEveryUserAsync"/>).</summary>
    public bool IsSignOutAfterLoad { get; init; }
}

/// <summary>
/// A bounded (in time and in operations) load of the changes that make events, through the Orleans client. Each
/// worker has users of its own and works on one at a time, one call after another, so the test knows each user's
/// sessions exactly until a call fails; then it leaves that user (whose sessions it no longer knows for sure) for a new one.
/// </summary>
internal sealed class EventLoad(ISessionStore store, int workers, int maxOperations)
{
    private readonly ConcurrentQueue<EventOperation> _operations = new();
    private readonly ConcurrentQueue<string> _tokens = new();
    private readonly ConcurrentDictionary<string, string[]> _held = new(StringComparer.Ordinal);
    private readonly Stopwatch _clock = new();
    private int _issued;
    private int _foundGone;

    public TimeSpan Elapsed => _clock.Elapsed;

    public IReadOnlyCollection<EventOperation> Operations => _operations;

    /// <summary>Every token the cluster issued to the test.</summary>
    public IReadOnlyCollection<string> Tokens => _tokens;


    /// <summary>Changes acknowledged as "no such session" for a session the test held live (a lost session).</summary>
    public int FoundGone => Volatile.Read(ref _foundGone);

    public async Task RunAsync(TimeSpan duration, CancellationToken cancellationToken)
    {
        _clock.Start();
        await Task.WhenAll(Enumerable.Range(0, workers).Select(w => Task.Run(() => WorkerAsync(w, duration, cancellationToken), CancellationToken.None)));
    }

    /// <summary>
    /// Signs every user of the load out everywhere, trying each until the cluster acknowledges it (within
    /// <paramref name="limit"/>): each session then has an end in the log, the ones whose calls failed too, so the
    /// reconciliation sees every session through, and a change the index made without its event (a session that
    /// left the index silently, or one listed without its Created) shows.
    /// </summary>
    public async Task SignOutEveryUserAsync(TimeSpan limit, CancellationToken cancellationToken)
    {
        var deadline = _clock.Elapsed + limit;
        await Parallel.ForEachAsync(_held, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (held, ct) =>
        {
            var operation = new EventOperation(EventOperationKind.RevokeAll, held.Key, null) { Ending = held.Value, IsSignOutAfterLoad = true };
            _operations.Enqueue(operation);
            while (true)
            {
                try
                {
                    operation.EndedCount = await store.DeleteAllForUserAsync(held.Key, cancellationToken: ct);
                    operation.AcknowledgedAt = _clock.Elapsed;
                    return;
                }
                catch (SessionStoreUnavailableException exception) when (_clock.Elapsed < deadline)
                {
                    // "May have been applied" after a retry inside the client, or the cluster still recovering: again.
                    operation.Error = exception.Message;
                    await Task.Delay(200, ct);
                }
            }
        });
    }

    private async Task WorkerAsync(int worker, TimeSpan duration, CancellationToken cancellationToken)
    {
        var random = new Random(worker);
        var users = 0;
        var user = $"ev-{worker}-{users++}";
        var creates = 0;
        var live = new List<(string SessionId, string Token, TimeSpan IntroducedAt)>();
        var ended = new List<string>();

        void NextUser()
        {
            // What the test holds live for sure of the user it leaves: nothing, after a call that failed.
            _held[user] = [.. live.Select(s => s.SessionId)];
            user = $"ev-{worker}-{users++}";
            creates = 0;
            live.Clear();
            ended.Clear();
        }

        while (_clock.Elapsed < duration && Interlocked.Increment(ref _issued) <= maxOperations)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var roll = random.Next(100);
            if (creates >= 15 && (live.Count == 0 || roll < 30))
            {
                // Well below the per-user limit (no evictions) and the creation-burst threshold.
                NextUser();
            }

            var target = live.Count == 0 ? -1 : random.Next(live.Count);
            var operation = target < 0 || roll < 30 ? new EventOperation(EventOperationKind.Create, user, null)
                : roll < 50 ? new EventOperation(EventOperationKind.Rotate, user, live[target].SessionId)
                : roll < 63 ? new EventOperation(EventOperationKind.Delete, user, live[target].SessionId)
                : roll < 76 ? new EventOperation(EventOperationKind.Revoke, user, live[target].SessionId)
                : roll < 84 && ended.Count > 0 ? new EventOperation(EventOperationKind.Revoke, user, ended[random.Next(ended.Count)])
                : roll < 90 ? new EventOperation(EventOperationKind.Create, user, null)
                : new EventOperation(EventOperationKind.RevokeAll, user, null);
            _operations.Enqueue(operation);
            try
            {
                switch (operation.Kind)
                {
                    case EventOperationKind.Create:
                        creates++;
                        var created = await store.CreateAsync(user, cancellationToken: cancellationToken);
                        _tokens.Enqueue(created.Token.Value);
                        operation.SessionId = created.Session.SessionId;
                        operation.AcknowledgedAt = _clock.Elapsed;
                        live.Add((created.Session.SessionId, created.Token.Value, operation.AcknowledgedAt.Value));
                        break;

                    case EventOperationKind.Rotate:
                        var rotated = await store.RotateAsync(live[target].Token, cancellationToken: cancellationToken);
                        operation.AcknowledgedAt = _clock.Elapsed;
                        if (rotated is null)
                        {
                            Interlocked.Increment(ref _foundGone);
                            live.RemoveAt(target);
                            break;
                        }

                        _tokens.Enqueue(rotated.Token.Value);
                        operation.NewSessionId = rotated.Session.SessionId;
                        ended.Add(live[target].SessionId);
                        live[target] = (rotated.Session.SessionId, rotated.Token.Value, operation.AcknowledgedAt.Value);
                        break;

                    case EventOperationKind.Delete:
                        operation.Ended = await store.DeleteAsync(live[target].Token, cancellationToken);
                        operation.AcknowledgedAt = _clock.Elapsed;
                        Ended(target, operation.Ended);
                        break;

                    case EventOperationKind.Revoke when live.Count > 0 && operation.SessionId == live[target].SessionId:
                        operation.Ended = await store.RevokeAsync(user, operation.SessionId, cancellationToken);
                        operation.AcknowledgedAt = _clock.Elapsed;
                        Ended(target, operation.Ended);
                        break;

                    case EventOperationKind.Revoke:
                        // A session that already ended: nothing to revoke, so no event.
                        operation.Ended = await store.RevokeAsync(user, operation.SessionId, cancellationToken);
                        operation.AcknowledgedAt = _clock.Elapsed;
                        break;

                    case EventOperationKind.RevokeAll:
                        operation.Except = live.Count > 0 && random.Next(2) == 0 ? live[random.Next(live.Count)].SessionId : null;
                        operation.Ending = [.. live.Select(s => s.SessionId).Where(id => id != operation.Except)];
                        operation.EndedCount = await store.DeleteAllForUserAsync(user, operation.Except, cancellationToken);
                        operation.AcknowledgedAt = _clock.Elapsed;
                        ended.AddRange(operation.Ending);
                        live.RemoveAll(s => s.SessionId != operation.Except);
                        break;
                }
            }
            catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // The outcome is unknown: the user's sessions are no longer known for sure, so the worker leaves the user.
                operation.Error = exception.GetType().Name + ": " + exception.Message.Split('\n')[0];
                operation.FailedAt = _clock.Elapsed;
                live.Clear();
                NextUser();
                await Task.Delay(20, cancellationToken);
            }
        }

        _held[user] = [.. live.Select(s => s.SessionId)];

        void Ended(int target, bool wasLive)
        {
            if (!wasLive)
            {
                Interlocked.Increment(ref _foundGone);
            }

            ended.Add(live[target].SessionId);
            live.RemoveAt(target);
        }
    }
}

/// <summary>
/// The event log read back, held against the operations that made it. Demanded: an event for each acknowledged
/// change (<c>demanded</c> says which acknowledgement times count). Forbidden, whatever was acknowledged: an event
/// no operation of the test explains, a second Created or a second end of one session, an event of a session after
/// its end, one position twice or out of order, and any token in an event.
/// </summary>
internal sealed class EventReconciliation
{
    private const int ProblemsShown = 15;

    public List<string> Problems { get; } = [];

    /// <summary>The log as read.</summary>
    public IReadOnlyList<SessionEvent> Events { get; private set; } = [];

    public int Acknowledged { get; private set; }

    public int Failed { get; private set; }

    public int EventsRead { get; private set; }

    public int Demanded { get; private set; }

    public int Missing { get; private set; }

    /// <summary>Events of sessions whose create or rotation failed: allowed (the failed call may have been applied), never demanded.</summary>
    public int OfFailedCalls { get; private set; }

    public string Figures(EventLoad load) =>
        $"{Acknowledged} operations acknowledged, with the sign-out of each user after the load ({Describe(load, acknowledged: true)}), {Failed} failed ({Describe(load, acknowledged: false)}); " +
        $"{EventsRead} events read, of which {OfFailedCalls} of sessions made by failed calls; {Demanded} events demanded, missing: {Missing}; " +
        $"sessions found gone: {load.FoundGone}; other problems: {Problems.Count - Missing}" +
        (Failed == 0 ? "" : $"; errors: {string.Join("; ", load.Operations.Where(o => o.AcknowledgedAt is null).Select(o => o.Error).OfType<string>().GroupBy(e => e.Split(':')[0]).Select(g => $"{g.Count()} {g.Key}"))}");

    private static string Describe(EventLoad load, bool acknowledged) =>
        string.Join(", ", load.Operations.Where(o => o.AcknowledgedAt.HasValue == acknowledged).GroupBy(o => o.Kind).OrderBy(g => g.Key).Select(g => $"{g.Count()} {g.Key}"));

    /// <summary>No problem, and a load that exercised every kind of change (a test that demanded nothing proves nothing).</summary>
    public void AssertClean(EventLoad load, TimeSpan faultAt)
    {
        Assert.True(Problems.Count == 0, $"{Problems.Count} problems (missing: {Missing}):\n{string.Join('\n', Problems.OrderBy(p => !p.StartsWith("missing", StringComparison.Ordinal)).Take(ProblemsShown))}");
        var early = load.Operations.FirstOrDefault(o => o.FailedAt < faultAt);
        Assert.True(early is null, $"a call failed before the fault: {early?.Kind}: {early?.Error}");
        foreach (var kind in Enum.GetValues<EventOperationKind>())
        {
            var count = load.Operations.Count(o => o.Kind == kind && o.AcknowledgedAt.HasValue);
            Assert.True(count >= 10, $"only {count} {kind} operations were acknowledged");
        }

        Assert.True(Demanded >= 200, $"only {Demanded} events were demanded");
    }

    public static EventReconciliation Run(
        IReadOnlyCollection<EventOperation> operations,
        IReadOnlyList<SessionEvent> events,
        IReadOnlyCollection<string> tokens,
        Func<TimeSpan, bool> demanded)
    {
        var result = new EventReconciliation
        {
            Acknowledged = operations.Count(o => o.AcknowledgedAt.HasValue),
            Failed = operations.Count(o => !o.AcknowledgedAt.HasValue),
            EventsRead = events.Count,
            Events = events,
        };
        result.CheckTokens(events, tokens);
        var history = result.WalkLog(operations, events);
        result.CheckDemands(operations, history, demanded);

        // After its user was signed out everywhere no session is live, so none is in the log: each has an end there
        // (one that left the index without its event would still be live in the log).
        var signedOut = operations.Where(o => o.IsSignOutAfterLoad && o.AcknowledgedAt is { } at && demanded(at)).Select(o => o.UserId).ToHashSet(StringComparer.Ordinal);
        foreach (var (sessionId, h) in history.Where(h => h.Value.Finish is null && signedOut.Contains(h.Value.UserId)))
        {
            var calls = operations.Where(o => o.SessionId == sessionId || o.NewSessionId == sessionId)
                .Select(o => $"{o.Kind} {(o.AcknowledgedAt is { } at ? $"acknowledged at {at.TotalSeconds:0.000} s" : $"failed at {o.FailedAt?.TotalSeconds:0.000} s ({o.Error})")}");
            result.Problems.Add($"{h.UserId}/{SessionIds.ForLog(sessionId)}: live in the log after its user was signed out everywhere (no end event); calls: {string.Join(", ", calls)}");
        }

        return result;
    }

    /// <summary>No token the test was issued, nor any token-shaped text, in any event as JSON.</summary>
    private void CheckTokens(IReadOnlyList<SessionEvent> events, IReadOnlyCollection<string> tokens)
    {
        var all = new StringBuilder();
        foreach (var e in events)
        {
            all.Append(JsonSerializer.Serialize(e)).Append('\n');
        }

        var text = all.ToString();
        if (text.Contains("sg1_", StringComparison.Ordinal))
        {
            Problems.Add("an event holds token-shaped text (sg1_)");
        }

        // The token's random bits and MAC, sg1_{keyId}_{these} (base64url, which may hold '_' too; a key id does not).
        var leaked = tokens.Count(t => text.Contains(t[(t.IndexOf('_', t.IndexOf('_') + 1) + 1)..], StringComparison.Ordinal));
        if (leaked > 0)
        {
            Problems.Add($"{leaked} of the {tokens.Count} tokens issued appear in events");
        }
    }

    /// <summary>What the log says of one session, in log order.</summary>
    private sealed class SessionHistory(string userId)
    {
        public string UserId { get; } = userId;

        public List<SessionEvent> Created { get; } = [];

        /// <summary>The Rotated event that brought this id in (as its new id).</summary>
        public SessionEvent? RotatedTo { get; set; }

        /// <summary>Its end: an Ended event, or the Rotated event that moved it on.</summary>
        public SessionEvent? Finish { get; set; }
    }

    /// <summary>Walks the log in order: positions, duplicates, order per session, and that every event is explained by an operation of the test.</summary>
    private Dictionary<string, SessionHistory> WalkLog(IReadOnlyCollection<EventOperation> operations, IReadOnlyList<SessionEvent> events)
    {
        var users = operations.Select(o => o.UserId).ToHashSet(StringComparer.Ordinal);

        // Ids the test knows (acknowledged creates and rotations), with their users.
        var known = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var o in operations.Where(o => o.AcknowledgedAt.HasValue))
        {
            if (o.Kind == EventOperationKind.Create || o.Kind == EventOperationKind.Rotate)
            {
                known[o.SessionId!] = o.UserId;
            }

            if (o.NewSessionId is { } newId)
            {
                known[newId] = o.UserId;
            }
        }

        var rotatedTo = operations.Where(o => o.NewSessionId is not null).ToDictionary(o => o.SessionId!, o => o.NewSessionId!, StringComparer.Ordinal);
        var failedRotations = operations.Where(o => o.Kind == EventOperationKind.Rotate && o.AcknowledgedAt is null).Select(o => o.SessionId!).ToHashSet(StringComparer.Ordinal);
        var failedCreates = operations.Where(o => o.Kind == EventOperationKind.Create && o.AcknowledgedAt is null).GroupBy(o => o.UserId).ToDictionary(g => g.Key, g => g.Count());
        var unknownCreates = new Dictionary<string, int>();

        var history = new Dictionary<string, SessionHistory>(StringComparer.Ordinal);
        var positions = new HashSet<string>(StringComparer.Ordinal);
        (ulong, ulong) last = (0, 0);
        foreach (var e in events)
        {
            if (!positions.Add(e.Position))
            {
                Problems.Add($"position {e.Position} delivered twice");
                continue;
            }

            var position = ParsePosition(e.Position);
            if (position.CompareTo(last) <= 0)
            {
                Problems.Add($"position {e.Position} after {last.Item1}-{last.Item2}: out of order");
            }

            last = position;
            var id = SessionIds.ForLog(e.SessionId);
            if (!users.Contains(e.UserId))
            {
                Problems.Add($"{Describe(e)}: a user the test never used");
                continue;
            }

            if (known.TryGetValue(e.SessionId, out var owner) && owner != e.UserId)
            {
                Problems.Add($"{Describe(e)}: the session is {owner}'s");
            }

            history.TryGetValue(e.SessionId, out var h);
            switch (e.Kind)
            {
                case SessionEventKind.Created:
                    if (h is not null)
                    {
                        Problems.Add($"{Describe(e)}: the session was already {(h.Created.Count > 0 ? "created" : "rotated to")} (a second Created)");
                        h.Created.Add(e);
                        break;
                    }

                    if (!known.ContainsKey(e.SessionId))
                    {
                        // Only a failed create of this user can explain a session the test never heard of.
                        unknownCreates[e.UserId] = unknownCreates.GetValueOrDefault(e.UserId) + 1;
                        OfFailedCalls++;
                        if (unknownCreates[e.UserId] > failedCreates.GetValueOrDefault(e.UserId))
                        {
                            Problems.Add($"{Describe(e)}: a session the test never created ({unknownCreates[e.UserId]} unknown, {failedCreates.GetValueOrDefault(e.UserId)} failed creates of the user)");
                        }
                    }

                    h = history[e.SessionId] = new SessionHistory(e.UserId);
                    h.Created.Add(e);
                    break;

                case SessionEventKind.Rotated:
                    var previous = e.PreviousSessionId is { } p && history.TryGetValue(p, out var ph) ? ph : null;
                    if (previous is null)
                    {
                        Problems.Add($"{Describe(e)}: the previous session has no earlier event");
                    }
                    else if (previous.Finish is { } finish)
                    {
                        Problems.Add($"{Describe(e)}: the previous session had already {Describe(finish)}");
                    }
                    else
                    {
                        previous.Finish = e;
                    }

                    if (h is not null)
                    {
                        Problems.Add($"{Describe(e)}: the new id already had events");
                        break;
                    }

                    if (rotatedTo.TryGetValue(e.PreviousSessionId ?? "", out var expected) ? expected != e.SessionId : !failedRotations.Contains(e.PreviousSessionId ?? ""))
                    {
                        Problems.Add($"{Describe(e)}: no rotation of the test explains it");
                    }
                    else if (!known.ContainsKey(e.SessionId))
                    {
                        OfFailedCalls++;
                    }

                    h = history[e.SessionId] = new SessionHistory(e.UserId) { RotatedTo = e };
                    break;

                case SessionEventKind.Ended:
                    if (h is null)
                    {
                        Problems.Add($"{Describe(e)}: the session has no earlier Created or Rotated");
                    }
                    else if (h.Finish is { } done)
                    {
                        Problems.Add($"{Describe(e)}: the session had already {Describe(done)}");
                    }
                    else
                    {
                        h.Finish = e;
                    }

                    break;

                default:
                    if (h is null || h.Finish is not null)
                    {
                        Problems.Add($"{Describe(e)}: not a live session then");
                    }

                    break;
            }
        }

        return history;
    }

    /// <summary>An event for each acknowledged change that <paramref name="demanded"/> counts.</summary>
    private void CheckDemands(IReadOnlyCollection<EventOperation> operations, Dictionary<string, SessionHistory> history, Func<TimeSpan, bool> demanded)
    {
        // When each id the test knows was created or rotated to: an end is only demanded of a session whose start was.
        var introduced = new Dictionary<string, TimeSpan>(StringComparer.Ordinal);
        foreach (var o in operations.Where(o => o.AcknowledgedAt.HasValue))
        {
            if (o.Kind == EventOperationKind.Create)
            {
                introduced[o.SessionId!] = o.AcknowledgedAt!.Value;
            }
            else if (o.NewSessionId is { } newId)
            {
                introduced[newId] = o.AcknowledgedAt!.Value;
            }
        }

        void Demand(EventOperation o, string sessionId, bool found, string what)
        {
            Demanded++;
            if (!found)
            {
                Missing++;
                var seen = history.TryGetValue(sessionId, out var h) ? $"the log has {h.Created.Count} Created{(h.Finish is { } f ? ", " + Describe(f) : "")}" : "the log has nothing of it";
                Problems.Add($"missing: {what} of {o.UserId}/{SessionIds.ForLog(sessionId)} (acknowledged at {o.AcknowledgedAt!.Value.TotalSeconds:0.000} s); {seen}");
            }
        }

        bool EndedAs(string sessionId, SessionEndReason reason) =>
            history.TryGetValue(sessionId, out var h) && h.Finish is { Kind: SessionEventKind.Ended } end && end.EndReason == reason;

        foreach (var o in operations.Where(o => o.AcknowledgedAt is { } at && demanded(at)))
        {
            switch (o.Kind)
            {
                case EventOperationKind.Create:
                    Demand(o, o.SessionId!, history.TryGetValue(o.SessionId!, out var h) && h.Created.Count == 1 && h.Created[0].UserId == o.UserId, "one Created");
                    break;
                case EventOperationKind.Rotate when o.NewSessionId is { } newId:
                    Demand(o, newId, history.TryGetValue(newId, out var r) && r.RotatedTo is { } e && e.PreviousSessionId == o.SessionId && e.UserId == o.UserId, $"Rotated from {SessionIds.ForLog(o.SessionId!)}");
                    break;
                case EventOperationKind.Delete when o.Ended:
                    Demand(o, o.SessionId!, EndedAs(o.SessionId!, SessionEndReason.Deleted), "Ended (Deleted)");
                    break;
                case EventOperationKind.Revoke when o.Ended:
                    Demand(o, o.SessionId!, EndedAs(o.SessionId!, SessionEndReason.Revoked), "Ended (Revoked)");
                    break;
                case EventOperationKind.RevokeAll:
                    foreach (var sessionId in o.Ending.Where(id => introduced.TryGetValue(id, out var at) && demanded(at)))
                    {
                        Demand(o, sessionId, EndedAs(sessionId, SessionEndReason.RevokedAll), "Ended (RevokedAll)");
                    }

                    break;
            }
        }
    }

    /// <summary>A Redis stream id (milliseconds-sequence) as a pair that orders as the stream does.</summary>
    private static (ulong, ulong) ParsePosition(string position)
    {
        var dash = position.IndexOf('-', StringComparison.Ordinal);
        return dash > 0
            && ulong.TryParse(position.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out var ms)
            && ulong.TryParse(position.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var sequence)
            ? (ms, sequence)
            : throw new FormatException($"Not a Redis stream position: {position}");
    }

    private static string Describe(SessionEvent e) =>
        $"{e.Kind}{(e.EndReason is { } reason ? $" ({reason})" : "")} of {e.UserId}/{SessionIds.ForLog(e.SessionId)}" +
        $"{(e.PreviousSessionId is { } p ? $" from {SessionIds.ForLog(p)}" : "")} at {e.Position}";
}
