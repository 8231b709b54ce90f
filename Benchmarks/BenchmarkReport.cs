using System.Globalization;
using System.Text;
using System.Text.Json;

namespace SessionGrains.Benchmarks;

/// <summary>Prints the table and saves it as JSON and Markdown under Benchmarks/results.</summary>
internal static class BenchmarkReport
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Every row's throughput against the seed's Redis store (<paramref name="seedName"/>), and a PostgreSQL row's also against the seed's SQL store (<paramref name="seedSqlName"/>).</summary>
    public static IReadOnlyList<Measurement> WithRatios(IReadOnlyList<Measurement> results, string seedName, string seedSqlName)
    {
        double? RatioTo(Measurement row, string name) =>
            results.FirstOrDefault(s => s.Target == name && s.Workload == row.Workload) is { OpsPerSecond: > 0 } seed ? row.OpsPerSecond / seed.OpsPerSecond : null;
        return results.Select(r => r with
        {
            RatioToSeed = RatioTo(r, seedName),
            RatioToSeedSql = r.Server == StoreServer.PostgreSQL ? RatioTo(r, seedSqlName) : null,
        }).ToList();
    }

    public static string Markdown(IReadOnlyList<Measurement> results, BenchmarkOptions options)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"Run {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC on {Environment.ProcessorCount} cores ({System.Runtime.InteropServices.RuntimeInformation.OSDescription.Trim()}, .NET {Environment.Version}); " +
            $"{options.Concurrency} concurrent callers (count: 1), each cell the median of {options.Rounds} rounds of {options.DurationSeconds:0.#} s after a warm-up round (targets interleaved), {options.Sessions:N0} sessions, {options.CountSessions:N0} more stored before count; × seed (SQL): PostgreSQL rows against the seed's SQL store; KB allocated/op is in the benchmark process (the caller's side; co-hosted, the silo too); store CPU µs/op is the CPU time per operation of the server the row keeps its sessions in: the redis-server, or on PostgreSQL the postmaster and all its backends (— where operations include unmeasured setup); " +
            $"hit ratio is the near cache's hits / (hits + misses) in the frontends (— for the peers and where the workload is not mostly validations); " +
            $"realistic: {options.Sessions:N0} sessions, each validated about once a second ({options.Sessions:N0} ops/s offered; ops/s is what was served), each target's rounds back to back after a warm-up of {options.RealisticWarmUp.TotalSeconds:0.#} s; " +
            $"revoke: {BenchmarkOptions.RevokeCallers} callers, latency and ops/s of the revoke alone (the setup and the check after it are not counted); one frozen: {options.FrozenSessions:N0} revokes at once, right after the SIGSTOP, in one round{(options.Smoke ? "; SMOKE RUN, not a measurement" : "")}.");
        text.AppendLine();
        text.AppendLine("| workload | target | ops/s | rounds' range | p50 ms | p99 ms | p99.9 ms | × seed (GET) | × seed (SQL) | hit ratio | KB allocated/op | store CPU µs/op | errors |");
        text.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Workload} | {r.Target} | {r.OpsPerSecond:N0} | {r.MinOpsPerSecond:N0}–{r.MaxOpsPerSecond:N0} | {r.P50Ms:0.000} | {r.P99Ms:0.000} | {r.P999Ms:0.000} | {Ratio(r.RatioToSeed)} | {Ratio(r.RatioToSeedSql)} | {(r.HitRatio is { } hits ? hits.ToString("0.0%", CultureInfo.InvariantCulture) : "—")} | {r.AllocatedBytesPerOperation / 1024:0.0} | {(r.StoreCpuMicrosecondsPerOperation is { } storeCpu ? storeCpu.ToString("0.0", CultureInfo.InvariantCulture) : "—")} | {r.Errors} |");
        }

        return text.ToString();
    }

    private static string Ratio(double? ratio) => ratio is { } value ? value.ToString("0.00", CultureInfo.InvariantCulture) + "×" : "—";

    public static void Write(IReadOnlyList<Measurement> results, BenchmarkOptions options, TextWriter console)
    {
        var markdown = Markdown(results, options);
        console.WriteLine();
        console.WriteLine(markdown);
        Directory.CreateDirectory(options.ResultsDirectory);
        var name = options.Smoke ? "smoke" : "latest";
        File.WriteAllText(Path.Combine(options.ResultsDirectory, name + ".md"), markdown);
        File.WriteAllText(Path.Combine(options.ResultsDirectory, name + ".json"), JsonSerializer.Serialize(new
        {
            date = DateTime.UtcNow,
            cores = Environment.ProcessorCount,
            options.Concurrency,
            options.DurationSeconds,
            options.Rounds,
            options.Sessions,
            options.CountSessions,
            coHostedCache = options.CoHostedCache.ToString(),
            realisticWarmUpSeconds = options.RealisticWarmUp.TotalSeconds,
            revokeCallers = BenchmarkOptions.RevokeCallers,
            options.FrozenSessions,
            options.Smoke,
            results,
        }, Indented));
        console.WriteLine($"Saved {name}.md and {name}.json in {options.ResultsDirectory}");
    }
}
