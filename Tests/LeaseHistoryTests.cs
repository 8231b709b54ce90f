using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using SessionGrains.HistoryFrontend;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>
/// The store as a web deployment sees it, checked as a whole history: three frontend processes and a writer make
/// concurrent validations and writes while silos are killed, a frontend is paused and Redis restarts, and
/// <see cref="HistoryChecker"/> finds no answer the sequential model of a session forbids. The frontends' near
/// cache is switched by <c>SessionStore__NearCache__Enabled</c>. Length: <c>HISTORY_SECONDS</c> (default 30).
/// </summary>
[Trait("Category", "Faults")]
[Collection(FaultCollection.Name)]
public sealed class LeaseHistoryTests
{
    private const int Silos = 3;
    private const int Users = 40;
    private const int Limit = 4;
    private const int SessionsPerUser = 6;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static int Setting(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value > 0 ? value : fallback;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Validations_and_writes_through_three_frontends_under_faults_break_no_rule_of_the_session_model(bool nearCache)
    {
        var settings = new Dictionary<string, string> { ["SessionStore__NearCache__Enabled"] = nearCache ? "true" : "false" };

        var run = await RunAsync(Silos, TimeSpan.FromSeconds(Setting("HISTORY_SECONDS", 25)), faults: true, _ => settings);

        var cache = run.NearCache;
        FaultFigures.Record($"lease history (near cache {(nearCache ? "on" : "off")}, {Silos} silos, 3 frontends, {Users} users, limit {Limit}, {run.Ran.TotalSeconds:0} s)",
            $"{run.Report.Summary}; {run.Report.Indeterminate} indeterminate; faults: {string.Join(", ", run.Faults)}; {run.Report.Coverage}; " +
            $"near cache: {cache.Hits} hits, {cache.Misses} misses, {cache.Recalls} recalls; {run.Phases}");
        Assert.True(run.Report.Anomalies.Count == 0, run.Report.ToString());

        // A run that checked nothing proves nothing.
        var seconds = (int)run.Ran.TotalSeconds;
        var coverage = run.Report.Coverage;
        Assert.True(coverage.SuccessfulValidations >= 20 * seconds, $"only {coverage.SuccessfulValidations} successful validations: {run.Report}");
        Assert.True(coverage.AcknowledgedWrites >= 3 * seconds, $"only {coverage.AcknowledgedWrites} acknowledged writes: {run.Report}");
        Assert.True(coverage.CallsAfterEnd >= 50, $"only {coverage.CallsAfterEnd} calls after a known end: {run.Report}");
        Assert.True(coverage.AnswersAfterUpdate >= 50, $"only {coverage.AnswersAfterUpdate} answers after an acknowledged update: {run.Report}");
        Assert.True(coverage.InferredEvictions >= Users, $"only {coverage.InferredEvictions} evictions inferred: {run.Report}");
        Assert.True(coverage.SessionsConfirmedAfterRun >= 10, $"only {coverage.SessionsConfirmedAfterRun} updated sessions confirmed after the run: {run.Report}");
        Assert.True(coverage.LimitChecks >= Users, $"only {coverage.LimitChecks} lists and counts: {run.Report}");
        Assert.Equal(Limit, coverage.MostSessionsLiveAtOnce);

        // With the cache on, the frontends must have answered from memory and been called back, or the run proved nothing about leases.
        Assert.True(nearCache ? cache.Hits >= coverage.SuccessfulValidations / 10 && cache.Recalls >= 50 : cache.Hits == 0, $"near cache {(nearCache ? "on" : "off")}: {cache}");
    }

    [Fact]
    public async Task A_frontend_that_keeps_validations_without_leases_is_caught()
    {
        // Frontend 0 answers validations from a two-second cache that no write invalidates, like a TTL cache in front
        // of a store: revoked sessions and old versions come back, and the same harness has to see it.
        var run = await RunAsync(silos: 1, TimeSpan.FromSeconds(8), faults: false,
            index => index == 0 ? new Dictionary<string, string> { ["HistoryFrontend__UnsafeCacheTtl"] = "00:00:02" } : []);

        Assert.Contains(run.Report.Anomalies, a => a.StartsWith("(a)", StringComparison.Ordinal) && a.Contains("via frontend0", StringComparison.Ordinal));
        Assert.Contains(run.Report.Anomalies, a => a.StartsWith("(b)", StringComparison.Ordinal) && a.Contains("via frontend0", StringComparison.Ordinal));
        Assert.All(run.Report.Anomalies.Where(a => a.StartsWith("(a)", StringComparison.Ordinal) || a.StartsWith("(b)", StringComparison.Ordinal)),
            a => Assert.Matches(@"^\([ab]\) \w+ #\d+ via frontend0 ", a));
    }

    private sealed record class HistoryRun(HistoryReport Report, TimeSpan Ran, IReadOnlyList<string> Faults, string Phases, NearCacheCounts NearCache);

    /// <summary>Redis, the silos, three frontends; sessions for every user; the workload (with faults) for <paramref name="duration"/>; the check after it.</summary>
    private static async Task<HistoryRun> RunAsync(int silos, TimeSpan duration, bool faults, Func<int, IReadOnlyDictionary<string, string>> frontendSettings)
    {
        var phases = Stopwatch.StartNew();

        // Every write fsynced before it is acknowledged: a Redis kill -9 then loses nothing acknowledged, so what the
        // checker finds is the store's doing, not the one-second window of appendfsync everysec.
        await using var redis = new RedisServer(new RedisServerSettings(AppendOnly: true, ExtraArguments: ["--appendfsync", "always"]));
        await redis.InitializeAsync();
        await using var cluster = await LocalCluster.StartAsync(redis.ConnectionString, silos, prepare: c =>
        {
            c.Environment["SessionStore__MaxSessionsPerUser"] = Limit.ToString(CultureInfo.InvariantCulture);
            c.Environment["SessionStore__LimitPolicy"] = "EvictOldest";
            c.Environment["SessionStore__DefaultIdleTimeout"] = "12:00:00"; // the checker's model has no expiry: no session may idle out in a long run
        });
        var frontends = Enumerable.Range(0, 3).Select(i => new FrontendProcess(cluster, i, frontendSettings(i))).ToList();
        try
        {
            await Task.WhenAll(frontends.Select(f => f.StartAsync()));
            var started = phases.Elapsed;
            var workload = new HistoryWorkload(
                new ClientRoute("writer", cluster.Store), [.. frontends.Select(f => new FrontendRoute(f))], Users, Limit,
                maxOperations: Setting("HISTORY_MAX_OPERATIONS", 2_000_000));
            await workload.SetupAsync(SessionsPerUser, Ct);
            var setUp = phases.Elapsed;

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            var clock = Stopwatch.StartNew();
            var running = workload.RunAsync(validatorsPerFrontend: 4, writers: 4, stop.Token);
            var injected = faults ? await InjectFaultsAsync(cluster, redis, frontends, duration, clock) : [];
            var rest = duration - clock.Elapsed;
            if (rest > TimeSpan.Zero)
            {
                await Task.Delay(rest, Ct);
            }

            await stop.CancelAsync();
            await running;
            var ran = clock.Elapsed;

            await cluster.WaitForActiveSilosAsync(silos, TimeSpan.FromSeconds(60));
            await Task.Delay(TimeSpan.FromSeconds(2), Ct);
            var checkedFrom = phases.Elapsed;
            await workload.CheckAfterRunAsync(Ct);
            var counts = await Task.WhenAll(frontends.Select(f => f.Http.GetFromJsonAsync<NearCacheCounts>("/near-cache", Ct)));
            var nearCache = new NearCacheCounts(counts.Sum(c => c!.Hits), counts.Sum(c => c!.Misses), counts.Sum(c => c!.Recalls));
            var report = HistoryChecker.Check(workload.Log, Limit);
            TestContext.Current.TestOutputHelper?.WriteLine(report.ToString());
            var timings = $"start {started.TotalSeconds:0} s, sessions {(setUp - started).TotalSeconds:0} s, run {ran.TotalSeconds:0} s, " +
                $"check after the run {(phases.Elapsed - checkedFrom).TotalSeconds:0} s";
            return new HistoryRun(report, ran, injected, timings, nearCache);
        }
        finally
        {
            foreach (var frontend in frontends)
            {
                await frontend.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// Cycles of faults until the run's length: Redis killed and restarted on its append-only file; then kill -9 of a
    /// silo, started again while a frontend is paused with SIGSTOP for 3 s. At least one cycle.
    /// </summary>
    private static async Task<List<string>> InjectFaultsAsync(LocalCluster cluster, RedisServer redis, List<FrontendProcess> frontends, TimeSpan duration, Stopwatch clock)
    {
        var faults = new List<string>();
        var cycle = 0;
        do
        {
            await Task.Delay(TimeSpan.FromSeconds(3), Ct);
            faults.Add($"redis kill -9 and restart at {clock.Elapsed.TotalSeconds:0.0} s");
            await redis.RestartAsync();

            await Task.Delay(TimeSpan.FromSeconds(3), Ct);
            var silo = cluster.Silos[cycle % cluster.Silos.Count];
            silo.Kill();
            faults.Add($"silo {silo.Index} kill -9 at {clock.Elapsed.TotalSeconds:0.0} s");
            await Task.Delay(TimeSpan.FromSeconds(1.5), Ct);
            var restarting = silo.StartAsync();

            var frontend = frontends[cycle % frontends.Count];
            frontend.Pause();
            faults.Add($"frontend {frontend.Index} SIGSTOP at {clock.Elapsed.TotalSeconds:0.0} s for 3 s");
            await Task.Delay(TimeSpan.FromSeconds(3), Ct);
            frontend.Resume();
            await restarting;
            await Task.Delay(TimeSpan.FromSeconds(2), Ct);
            cycle++;
        }
        while (clock.Elapsed + TimeSpan.FromSeconds(20) < duration);

        return faults;
    }
}
