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

            string[] everywhere = ["seed design (GET)", "SessionGrains, external client", "SessionGrains, co-hosted"];
            foreach (var workload in Workload.All)
            {
                foreach (var target in everywhere)
                {
                    Assert.Contains(measurements, m => m.Workload == workload.Name && m.Target == target);
                }
            }

            Assert.Equal(4, measurements.Count(m => m.Target == "ASP.NET Core RedisCache (sliding)"));
            Assert.Equal(2, measurements.Count(m => m.Target == "seed design, sliding (GET+EXPIRE)"));
            Assert.Equal(Workload.ValidateUniform.Name, Assert.Single(measurements, m => m.Target == "Orleans call per validation (floor)").Workload);
            Assert.All(measurements, m =>
            {
                Assert.True(m.Operations > 0, $"{m.Target} / {m.Workload} did nothing");
                Assert.Equal(0, m.Errors);
                Assert.Equal(2, m.Rounds); // one row per target: the median of its interleaved rounds
                Assert.InRange(m.OpsPerSecond, m.MinOpsPerSecond, m.MaxOpsPerSecond);
                Assert.True(m.AllocatedBytesPerOperation > 0, $"{m.Target} / {m.Workload}: no allocation measured");
            });
            Assert.All(measurements.Where(m => m.Target == "seed design (GET)"), m =>
            {
                Assert.Equal(1.0, m.RatioToSeed);
                Assert.True(m.RedisCpuMicrosecondsPerOperation > 0 || m.Workload == Workload.DeleteAllForUser.Name, $"{m.Workload}: the seed's Redis CPU was not measured");
            });
            Assert.All(measurements.Where(m => m.Workload == Workload.DeleteAllForUser.Name), m => Assert.Null(m.RedisCpuMicrosecondsPerOperation));
            Assert.Contains("| × seed (GET) | KB allocated/op | Redis CPU µs/op | errors |", await File.ReadAllTextAsync(Path.Combine(results, "smoke.md"), TestContext.Current.CancellationToken), StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Combine(results, "smoke.json")));
        }
        finally
        {
            Directory.Delete(results, recursive: true);
        }
    }
}
