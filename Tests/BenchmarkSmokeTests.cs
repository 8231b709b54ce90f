using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using SessionGrains.Benchmarks;

namespace SessionGrains.Tests;

/// <summary>Keeps the benchmark harness working: every workload against every target for about a second. Timing goals are not asserted here.</summary>
[Collection(Infrastructure.FaultCollection.Name)]
public sealed class BenchmarkSmokeTests
{
    [Fact]
    public async Task The_smoke_run_measures_every_workload_on_every_target_without_errors()
    {
        var results = Directory.CreateTempSubdirectory("sessiongrains-bench-smoke-").FullName;
        try
        {
            var options = BenchmarkOptions.Parse(["--smoke", "--results", results]);

            var measurements = await BenchmarkRunner.RunAsync(options, TextWriter.Null);
            BenchmarkReport.Write(measurements, options, TextWriter.Null);

            string[] sessionGrains = ["SessionGrains, external client, cache on", "SessionGrains, external client, cache off", "SessionGrains, co-hosted, cache on", "SessionGrains, co-hosted, cache off"];
            string[] frontends = ["SessionGrains, 3 frontends, cache on", "SessionGrains, 3 frontends, cache off"];
            string[] onPostgres = ["seed design, SQL (PostgreSQL)", "SessionGrains on PostgreSQL, external client, cache on", "SessionGrains on PostgreSQL, external client, cache off"];
            string[] rowsChecked = ["seed design (GET)", .. sessionGrains, .. frontends, .. onPostgres];
            foreach (var workload in Workload.All)
            {
                string[] expected = workload.ForFrontends ? frontends : workload == Workload.Realistic ? ["seed design (GET)", .. frontends] : ["seed design (GET)", .. sessionGrains, .. onPostgres];
                Assert.Equal(expected.Order(), measurements.Where(m => m.Workload == workload.Name && rowsChecked.Contains(m.Target)).Select(m => m.Target).Order());
            }

            Assert.Equal(
                [Workload.ValidateUniform.Name, Workload.Create.Name],
                measurements.Where(m => m.Target == "SessionGrains, co-hosted, cache off, events off").Select(m => m.Workload));
            Assert.Equal(4, measurements.Count(m => m.Target == "ASP.NET Core RedisCache (sliding)"));
            Assert.Equal(2, measurements.Count(m => m.Target == "seed design, sliding (GET+EXPIRE)"));
            Assert.Equal(Workload.ValidateUniform.Name, Assert.Single(measurements, m => m.Target == "Orleans call per validation (floor)").Workload);
            Assert.All(measurements, m =>
            {
                Assert.True(m.Operations > 0, $"{m.Target} / {m.Workload} did nothing");
                Assert.Equal(0, m.Errors);
                // One row per target: the median of its rounds; the frozen frontend's revokes are one burst.
                Assert.Equal(m.Workload == Workload.RevokeFrozen.Name ? 1 : 2, m.Rounds);
                Assert.InRange(m.OpsPerSecond, m.MinOpsPerSecond, m.MaxOpsPerSecond);
                Assert.True(m.AllocatedBytesPerOperation > 0, $"{m.Target} / {m.Workload}: no allocation measured");
                // A hit ratio wherever a SessionGrains frontend validates, none for the peers (zero hits until the near cache exists).
                var validating = Workload.All.Single(w => w.Name == m.Workload).Validates && m.Target.StartsWith("SessionGrains", StringComparison.Ordinal);
                Assert.Equal(validating, m.HitRatio is not null);
            });
            // Each seed's CPU is its own server's: Redis for the Redis store, PostgreSQL (postmaster and backends) for the SQL one.
            foreach (var (seed, server) in new[] { ("seed design (GET)", StoreServer.Redis), ("seed design, SQL (PostgreSQL)", StoreServer.PostgreSQL) })
            {
                // Measured wherever the workload's setup does not run inside the round; a smoke round is so short
                // (0.2 s) that on a busy machine one may fall inside a single 10 ms CPU tick, so more than nothing in all.
                var seedRows = measurements.Where(m => m.Target == seed).ToList();
                Assert.All(seedRows, m =>
                {
                    Assert.Equal(server, m.Server);
                    Assert.True(m.StoreCpuMicrosecondsPerOperation is not null || m.Workload == Workload.DeleteAllForUser.Name, $"{seed} / {m.Workload}: the store's CPU was not measured");
                });
                Assert.True(seedRows.Sum(m => m.StoreCpuMicrosecondsPerOperation ?? 0) > 0, $"{seed}: no CPU measured in any workload");
            }

            Assert.All(measurements.Where(m => m.Target == "seed design (GET)"), m => Assert.Equal(1.0, m.RatioToSeed));
            Assert.All(measurements.Where(m => m.Target == "seed design, SQL (PostgreSQL)"), m => Assert.Equal(1.0, m.RatioToSeedSql));
            // A ratio to the seed's SQL store on every PostgreSQL row and on no other.
            Assert.All(measurements, m => Assert.Equal(onPostgres.Contains(m.Target), m.RatioToSeedSql is not null));
            Assert.All(measurements, m => Assert.Equal(onPostgres.Contains(m.Target) ? StoreServer.PostgreSQL : StoreServer.Redis, m.Server));
            Assert.All(measurements.Where(m => m.Workload == Workload.DeleteAllForUser.Name), m => Assert.Null(m.StoreCpuMicrosecondsPerOperation));
            Assert.Contains("| × seed (GET) | × seed (SQL) | hit ratio | KB allocated/op | store CPU µs/op | errors |", await File.ReadAllTextAsync(Path.Combine(results, "smoke.md"), TestContext.Current.CancellationToken), StringComparison.Ordinal);
            Assert.Contains("\"Server\": \"PostgreSQL\"", await File.ReadAllTextAsync(Path.Combine(results, "smoke.json"), TestContext.Current.CancellationToken), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(results, recursive: true);
        }
    }

    [Fact]
    public async Task The_scale_run_stores_sessions_beside_the_seed_and_reports_every_figure()
    {
        var results = Directory.CreateTempSubdirectory("sessiongrains-scale-smoke-").FullName;
        try
        {
            var report = await ScaleRunner.RunAsync(2_000, results, TextWriter.Null);

            Assert.Equal(report, await File.ReadAllTextAsync(Path.Combine(results, "scale.md"), TestContext.Current.CancellationToken));
            string[] figures = ["Redis memory per session", "Redis per create", "Redis per last-access write", "Redis per end", "reminder table rows", "silo start"];
            Assert.All(figures, figure => Assert.Contains("| " + figure, report, StringComparison.Ordinal));
            Assert.DoesNotContain("NaN", report, StringComparison.Ordinal);

            // Every validation of the measured pass wrote its last access (a compare-and-set script: at least two commands).
            var writes = System.Text.RegularExpressions.Regex.Match(report, @"\| Redis per last-access write[^|]*\|[^|]*\| (?<commands>[0-9.]+) commands");
            Assert.True(writes.Success, report);
            Assert.InRange(double.Parse(writes.Groups["commands"].Value, System.Globalization.CultureInfo.InvariantCulture), 2, 4);
        }
        finally
        {
            Directory.Delete(results, recursive: true);
        }
    }

    [Fact]
    public void The_near_cache_counters_add_up_the_hits_and_misses_of_their_own_frontend_only()
    {
        using var frontend = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var otherFrontend = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var counters = new NearCacheCounters(frontend);
        var meter = frontend.GetRequiredService<IMeterFactory>().Create(SessionGrainsMetrics.MeterName);
        var other = otherFrontend.GetRequiredService<IMeterFactory>().Create(SessionGrainsMetrics.MeterName);

        meter.CreateCounter<long>(NearCacheCounters.HitsInstrument).Add(3);
        meter.CreateCounter<long>(NearCacheCounters.MissesInstrument).Add(1);
        meter.CreateCounter<long>("sessiongrains.validations").Add(50);
        other.CreateCounter<long>(NearCacheCounters.HitsInstrument).Add(100);

        Assert.Equal(new NearCacheCounts(3, 1), counters.Read());
        Assert.Equal(0.75, counters.Read().HitRatio);
        Assert.Equal(0, default(NearCacheCounts).HitRatio);
    }
}
