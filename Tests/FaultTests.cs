using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>
/// Silos and their store failing under load, with real processes: the Silo executable and redis-server with
/// AOF, or PostgreSQL. Each scenario is bounded in time and asserts that no acknowledged session or update is lost.
/// </summary>
[Trait("Category", "Faults")]
[Collection(FaultCollection.Name)]
public sealed class FaultTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(RedisServer Redis, LocalCluster Cluster)> StartAsync(int silos, bool? batchValidations = null)
    {
        var (store, cluster) = await FaultyStores.StartAsync(FaultyStores.Redis, silos, batchValidations);
        return ((RedisServer)store, cluster);
    }

    /// <param name="batchValidations">
    /// The frontend's validation batching. Forced on with two silos: a batch to the killed gateway fails as a
    /// whole, and a batch to the survivor carries sessions of the killed silo that fail one by one; each caller
    /// retries its own validation. Null: automatic, which is off with several silos.
    /// </param>
    [Theory]
    [InlineData(3, 8, 16, null)]
    [InlineData(2, 16, 14, true)]
    public async Task Killing_a_silo_under_load_loses_no_acknowledged_session_or_update(int silos, int workers, int seconds, bool? batchValidations)
    {
        var (redis, cluster) = await StartAsync(silos, batchValidations);
        await using var _ = redis;
        await using var __ = cluster;
        var load = new SessionLoad(cluster, workers);
        load.HttpSilos.AddRange(Enumerable.Range(0, silos - 1));

        var running = load.RunAsync(TimeSpan.FromSeconds(seconds), Ct);
        await Task.Delay(TimeSpan.FromSeconds(4), Ct);
        var killedAt = load.Elapsed;
        cluster.Silos[silos - 1].Kill();
        await running;

        await cluster.WaitForActiveSilosAsync(silos - 1, TimeSpan.FromSeconds(30));
        var lost = await load.FindLostAsync(Ct);
        var afterKill = load.Failures.Where(f => f.At >= killedAt).ToList();
        var recovery = Recovery(load, killedAt);
        FaultFigures.Record($"silo kill -9 ({silos} silos, {workers} workers, {seconds} s{(batchValidations == true ? ", validation batching forced on" : "")})",
            $"{load.Operations} requests, {load.AcknowledgedSessions} sessions; failed after the kill: {afterKill.Count}; " +
            $"all served again within {recovery.TotalSeconds:0.0} s (slowest request, retries included); lost: {lost.Count}");
        Assert.Empty(lost);
        Assert.DoesNotContain(load.Failures, f => f.At < killedAt);
        Assert.True(recovery < TimeSpan.FromSeconds(10), $"the cluster took {recovery} to serve again: {string.Join("; ", afterKill.Take(5).Select(f => f.Error))}");
    }

    [Fact]
    public async Task Scaling_out_and_restarting_every_silo_in_turn_loses_nothing()
    {
        var (redis, cluster) = await StartAsync(3);
        await using var _ = redis;
        await using var __ = cluster;
        var load = new SessionLoad(cluster, workers: 6);
        load.HttpSilos.AddRange([1, 2]);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var running = load.RunAsync(TimeSpan.FromSeconds(120), stop.Token);

        await Task.Delay(TimeSpan.FromSeconds(3), Ct);
        var added = await cluster.AddSiloAsync();
        await cluster.WaitForActiveSilosAsync(4, TimeSpan.FromSeconds(30));
        load.HttpSilos.Add(added.Index);
        var restartsBegan = load.Elapsed;
        foreach (var silo in cluster.Silos)
        {
            // A load balancer takes a silo out of its pool before it stops, and back once it is healthy.
            lock (load.HttpSilos)
            {
                load.HttpSilos.Remove(silo.Index);
            }

            await silo.StopAsync();
            await silo.StartAsync();
            await cluster.WaitForActiveSilosAsync(4, TimeSpan.FromSeconds(30));
            lock (load.HttpSilos)
            {
                load.HttpSilos.Add(silo.Index);
            }
        }

        await Task.Delay(TimeSpan.FromSeconds(2), Ct);
        await stop.CancelAsync();
        await running;

        var lost = await load.FindLostAsync(Ct);
        FaultFigures.Record("scale out to 4 silos, then restart all 4 one at a time (6 workers)",
            $"{load.Operations} requests, {load.AcknowledgedSessions} sessions, restarts took {(load.Elapsed - restartsBegan).TotalSeconds:0} s; " +
            $"failed requests: {load.Failures.Count}; slowest request {load.LongestRequestSince(TimeSpan.Zero).TotalSeconds:0.0} s; lost: {lost.Count}");
        Assert.Empty(lost);
        Assert.True(load.Failures.Count <= load.Operations / 100, $"{load.Failures.Count} failures: {string.Join("; ", load.Failures.Take(5).Select(f => f.Error))}");
    }

    [Theory]
    [InlineData(FaultyStores.Redis)]
    [InlineData(FaultyStores.Postgres)]
    public async Task The_store_killed_and_restarted_on_its_data_keeps_everything_acknowledged_a_second_before(string store)
    {
        var (server, cluster) = await FaultyStores.StartAsync(store, 2);
        await using var _ = server;
        await using var __ = cluster;
        var load = new SessionLoad(cluster, workers: 6);
        load.HttpSilos.Add(1);

        var running = load.RunAsync(TimeSpan.FromSeconds(16), Ct);
        await Task.Delay(TimeSpan.FromSeconds(5), Ct);
        var crashedAt = load.Elapsed;
        server.Kill();
        await Task.Delay(TimeSpan.FromSeconds(2), Ct);
        await server.RestartAsync();
        var restartedAt = load.Elapsed;
        await running;

        var lost = await load.FindLostAsync(Ct, acknowledgedBefore: crashedAt - TimeSpan.FromSeconds(1));
        var lastFailure = load.Failures.Select(f => f.At).DefaultIfEmpty(restartedAt).Max();
        FaultFigures.Record($"{store} kill -9, restart after 2 s on its data (AOF; WAL) (2 silos, 6 workers)",
            $"{load.Operations} requests; failed: {load.Failures.Count} (while down and just after); " +
            $"served again {(lastFailure > restartedAt ? lastFailure - restartedAt : TimeSpan.Zero).TotalSeconds:0.0} s after {store} was back; " +
            $"lost of those acknowledged >1 s before the crash: {lost.Count}");
        Assert.Empty(lost);
        Assert.True(lastFailure - restartedAt < TimeSpan.FromSeconds(8), "the silos did not reconnect within seconds");
        Assert.All(cluster.Silos, s => Assert.True(s.IsRunning));
    }

    [Fact]
    public async Task A_normal_start_logs_one_line_saying_what_started_and_no_warning()
    {
        // One silo: the test clusters' one-second membership probes (set for fast fault detection) can miss under load.
        var (redis, cluster) = await StartAsync(1);
        await using var _ = redis;
        await using var __ = cluster;
        await cluster.Store.CreateAsync("normal-start", cancellationToken: Ct);

        var log = cluster.Silos[0].ReadLog();
        var started = Assert.Single(log, e => e.EventId == 5002);
        Assert.Contains($"Redis at 127.0.0.1:{redis.Port}", string.Join(' ', started.Lines), StringComparison.Ordinal);

        // But Orleans' note on workstation GC, which these test silos choose (DOTNET_gcServer=0) to share two cores.
        var warning = log.FirstOrDefault(e => e.Level is "warn" or "fail" or "crit" && e.EventId != 100405);
        Assert.True(warning is null, $"the silo started with {warning?.Level}: {warning?.Category}[{warning?.EventId}] {string.Join(' ', warning?.Lines.Take(3) ?? [])}");
    }

    [Theory]
    [InlineData(FaultyStores.Redis)]
    [InlineData(FaultyStores.Postgres)]
    public async Task A_fifteen_second_store_outage_fails_fast_keeps_silos_up_recovers_in_seconds_and_logs_one_line_a_failure(string store)
    {
        var (server, cluster) = await FaultyStores.StartAsync(store, 2);
        await using var _ = server;
        await using var __ = cluster;
        var load = new SessionLoad(cluster, workers: 6);
        load.HttpSilos.Add(1);

        var running = load.RunAsync(TimeSpan.FromSeconds(26), Ct);
        await Task.Delay(TimeSpan.FromSeconds(4), Ct);
        var frozenAt = load.Elapsed;
        server.Freeze(true);
        await Task.Delay(TimeSpan.FromSeconds(5), Ct);

        // During the outage: the silo answers its health checks at once. Not ready, naming storage; still live, as a
        // restart would not bring Redis back (a liveness probe must not restart every silo on a Redis blip).
        var healthWatch = System.Diagnostics.Stopwatch.StartNew();
        using (var ready = await cluster.Silos[0].Http.GetAsync("/health/ready", Ct))
        {
            Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.Contains("storage", UnhealthyChecks(await ready.Content.ReadAsStringAsync(Ct)));
        }

        using (var live = await cluster.Silos[0].Http.GetAsync("/health/live", Ct))
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, live.StatusCode);
        }

        Assert.True(healthWatch.Elapsed < TimeSpan.FromSeconds(6), $"/health/ready and /health/live took {healthWatch.Elapsed} during the outage");
        var operationsBefore = load.Operations;
        await Task.Delay(TimeSpan.FromSeconds(10), Ct);
        var duringOutage = load.Operations - operationsBefore;
        server.Freeze(false);
        var thawedAt = load.Elapsed;
        await running;

        var failures = load.Failures.ToList();
        var lastFailure = failures.Select(f => f.At).DefaultIfEmpty(thawedAt).Max();
        var slowestFailure = failures.Count == 0 ? TimeSpan.Zero : load.LongestRequestSince(frozenAt);
        var lost = await load.FindLostAsync(Ct);
        FaultFigures.Record($"{store} unreachable (frozen) for 15 s (2 silos, 6 workers)",
            $"{load.Operations} requests; {duringOutage} answered in the last 10 s of the outage (validations of active sessions come from memory); " +
            $"failed: {failures.Count}, each within {slowestFailure.TotalSeconds:0.0} s ({string.Join(", ", failures.Select(f => f.Error.Split(':')[0]).Distinct())}); " +
            $"served again {(lastFailure > thawedAt ? lastFailure - thawedAt : TimeSpan.Zero).TotalSeconds:0.0} s after {store} returned; lost: {lost.Count}");
        Assert.NotEmpty(failures);
        Assert.All(failures, f => Assert.Contains("Unavailable", f.Error, StringComparison.OrdinalIgnoreCase));
        Assert.True(slowestFailure < TimeSpan.FromSeconds(8), $"a request took {slowestFailure} to fail");
        Assert.True(lastFailure - thawedAt < TimeSpan.FromSeconds(8), "service did not resume within seconds");
        Assert.Empty(lost);
        Assert.All(cluster.Silos, s => Assert.True(s.IsRunning));

        // Logs an operator can read: one line per storage failure, no stack traces, the readiness change once, and none
        // of the repeats Orleans and ASP.NET Core would add (the storage's failure again, the activation, the timer, each probe).
        foreach (var silo in cluster.Silos)
        {
            var log = silo.ReadLog();
            var storage = log.Where(e => e.Category == "SessionGrains.Storage").ToList();
            Assert.NotEmpty(storage);
            Assert.All(storage, e => Assert.False(e.HasStackTrace, $"silo {silo.Index}: a storage failure logged its stack:\n{string.Join('\n', e.Lines)}"));
            string[] repeats = ["SessionGrains.SessionGrainStorage", "Orleans.Grain", "Orleans.Runtime.GrainTimer", "Orleans.Grain.InvokeException", "Microsoft.Extensions.Diagnostics.HealthChecks.DefaultHealthCheckService"];
            var repeated = log.FirstOrDefault(e => repeats.Contains(e.Category));
            Assert.True(repeated is null, $"silo {silo.Index} logged a repeat: {repeated?.Category}[{repeated?.EventId}]\n{string.Join('\n', repeated?.Lines.Take(12) ?? [])}");
        }

        var readiness = cluster.Silos[0].ReadLog().Where(e => e.Category == "SessionGrains.Silo.HealthTransitions" && e.Level == "warn").ToList();
        Assert.Single(readiness);
        Assert.Contains("storage", string.Join(' ', readiness[0].Lines), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Redis_restarted_empty_does_not_wedge_the_silos_and_the_cluster_serves_new_sessions_again()
    {
        var (redis, cluster) = await StartAsync(2);
        await using var _ = redis;
        await using var __ = cluster;
        var before = await cluster.Store.CreateAsync("before-the-flush", cancellationToken: Ct);

        var wipedAt = DateTime.UtcNow;
        await redis.RestartAsync(wipeData: true);

        // The silo's own critical line; ASP.NET Core's health-check service also logs each unhealthy probe
        // (at Error, quoting the check's description), which is not what is counted here.
        int CriticalLines() => cluster.SiloLogLines().Count(line => line.Contains("Running silos cannot rebuild it", StringComparison.Ordinal));

        // Within seconds every silo says it is not live, and why (the one failure a restart cures), instead of serving
        // on a table that is gone.
        await WaitUntilAsync(async () =>
        {
            var notLive = 0;
            foreach (var silo in cluster.Silos)
            {
                using var live = await silo.Http.GetAsync("/health/live");
                notLive += !live.IsSuccessStatusCode && UnhealthyChecks(await live.Content.ReadAsStringAsync()).SequenceEqual(["membership-table"]) ? 1 : 0;
            }

            return notLive == cluster.Silos.Count && CriticalLines() >= cluster.Silos.Count;
        }, TimeSpan.FromSeconds(60));
        var noticedAfter = DateTime.UtcNow - wipedAt;
        Assert.Equal(cluster.Silos.Count, CriticalLines()); // once per silo, not per probe
        Assert.All(cluster.Silos, s => Assert.True(s.IsRunning, "a silo exited instead of reporting"));

        // What a supervisor (systemd, Docker restart policy, Kubernetes) does: restart what exited or is unhealthy.
        foreach (var silo in cluster.Silos)
        {
            await silo.StopAsync();
            await silo.StartAsync();
        }

        await cluster.WaitForActiveSilosAsync(2, TimeSpan.FromSeconds(60));
        var recoveredAfter = DateTime.UtcNow - wipedAt;
        var created = await cluster.Store.CreateAsync("after-the-flush", cancellationToken: Ct);
        Assert.NotNull(await cluster.Store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
        Assert.Null(await cluster.Store.ValidateAsync(before.Token.Value, cancellationToken: Ct));
        FaultFigures.Record("redis restarted empty (2 silos)",
            $"every silo reported the lost membership table on /health/live within {noticedAfter.TotalSeconds:0} s; after a restart by the supervisor the cluster served new sessions {recoveredAfter.TotalSeconds:0} s after the flush; sessions stored before are gone (as the data is)");
    }

    /// <summary>The names of the failing checks in a health endpoint's JSON answer.</summary>
    private static string[] UnhealthyChecks(string json) =>
        [.. System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty("checks").EnumerateArray()
            .Where(c => c.GetProperty("status").GetString() != "Healthy").Select(c => c.GetProperty("name").GetString()!)];

    [Fact]
    public async Task A_sentinel_failover_under_load_keeps_sessions_written_before_it()
    {
        // Plain asynchronous replication: what is promised is that sessions acknowledged before the failover
        // survive it. (min-replicas-to-write narrows the switch-over window further; README, Deployment.)
        await using var primary = new RedisServer(new RedisServerSettings(AppendOnly: true));
        await primary.InitializeAsync();
        await using var replica = new RedisServer(new RedisServerSettings(ExtraArguments: ["--replicaof", "127.0.0.1", primary.Port.ToString()]));
        await replica.InitializeAsync();
        var sentinels = new List<RedisServer>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var sentinel = new RedisServer(new RedisServerSettings(SentinelConfiguration:
                [
                    $"sentinel monitor sessions 127.0.0.1 {primary.Port} 2",
                    "sentinel down-after-milliseconds sessions 2000",
                    "sentinel failover-timeout sessions 10000",
                ]));
                await sentinel.InitializeAsync();
                sentinels.Add(sentinel);
            }

            await WaitUntilAsync(async () => (await replica.Server.InfoAsync("replication")).SelectMany(g => g).Any(kv => kv.Key == "master_link_status" && kv.Value == "up"), TimeSpan.FromSeconds(20));
            var configuration = string.Join(",", sentinels.Select(s => $"127.0.0.1:{s.Port}")) + ",serviceName=sessions";
            await using var cluster = await LocalCluster.StartAsync(configuration, 2);
            var load = new SessionLoad(cluster, workers: 6);
            load.HttpSilos.Add(1);

            var running = load.RunAsync(TimeSpan.FromSeconds(20), Ct);
            await Task.Delay(TimeSpan.FromSeconds(5), Ct);
            var failoverAt = load.Elapsed;
            await sentinels[0].Server.ExecuteAsync("SENTINEL", "FAILOVER", "sessions");
            await WaitUntilAsync(async () => (await replica.Server.InfoAsync("replication")).SelectMany(g => g).Any(kv => kv.Key == "role" && kv.Value == "master"), TimeSpan.FromSeconds(20));
            var promotedAt = load.Elapsed;
            await running;

            // After the failover the cluster takes writes again on the new primary (once a replica confirms them).
            CreatedSession? after = null;
            await WaitUntilAsync(async () => (after = await cluster.Store.CreateAsync("after-failover", cancellationToken: Ct)) is not null, TimeSpan.FromSeconds(90));
            var writableAfter = load.Elapsed - failoverAt;
            Assert.NotNull(await cluster.Store.ValidateAsync(after!.Token.Value, cancellationToken: Ct));

            var lostBefore = await load.FindLostAsync(Ct, acknowledgedBefore: failoverAt - TimeSpan.FromSeconds(1));
            var lostAll = await load.FindLostAsync(Ct);
            FaultFigures.Record("sentinel failover (primary + replica + 3 sentinels, 2 silos, 6 workers)",
                $"{load.Operations} requests; the replica was primary {(promotedAt - failoverAt).TotalSeconds:0.0} s after SENTINEL FAILOVER; failed: {load.Failures.Count}; " +
                $"writes accepted again {writableAfter.TotalSeconds:0} s after it at the latest; lost of those acknowledged >1 s before: {lostBefore.Count}; lost of those acknowledged during the switch-over: {lostAll.Count - lostBefore.Count}");
            Assert.Empty(lostBefore);
        }
        finally
        {
            foreach (var sentinel in sentinels)
            {
                await sentinel.DisposeAsync();
            }
        }
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await Holds(condition))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"The condition did not hold within {timeout}.");
            }

            await Task.Delay(200);
        }
    }

    private static async Task<bool> Holds(Func<Task<bool>> condition)
    {
        try
        {
            return await condition();
        }
        catch (Exception exception) when (exception is StackExchange.Redis.RedisException or HttpRequestException or SessionStoreUnavailableException)
        {
            return false; // a server in the middle of changing role, or a silo restarting
        }
    }

    /// <summary>How long after <paramref name="faultAt"/> the cluster was fully serving again: the later of the last failure and the end of the slowest request.</summary>
    private static TimeSpan Recovery(SessionLoad load, TimeSpan faultAt)
    {
        var lastFailure = load.Failures.Where(f => f.At >= faultAt).Select(f => f.At - faultAt).DefaultIfEmpty(TimeSpan.Zero).Max();
        return lastFailure > load.LongestRequestSince(faultAt) ? lastFailure : load.LongestRequestSince(faultAt);
    }
}
