using System.Globalization;

namespace SessionGrains.Benchmarks;

/// <summary>
/// What one operation cost the Redis server, averaged over a batch of them: commands (<c>INFO commandstats</c>,
/// counting those a script calls), and the server's CPU time (<c>INFO cpu</c>: commands plus network). The
/// breakdown (calls per operation × µs per call of each command) is for the log: a script's time includes the
/// commands it calls, which are also listed on their own.
/// </summary>
internal sealed record class RedisCost(double Commands, double CpuMicroseconds, string Breakdown)
{
    /// <summary>Runs <paramref name="run"/> (<paramref name="operations"/> operations) alone against <paramref name="redis"/> and divides.</summary>
    public static async Task<RedisCost> MeasureAsync(RedisProcess redis, int operations, Func<Task> run)
    {
        var server = redis.Connection.GetServers()[0];
        var before = PerCommand(await server.InfoAsync("commandstats"));
        var cpuBefore = await redis.CpuSecondsAsync();
        await run();
        var cpu = await redis.CpuSecondsAsync() - cpuBefore;
        var after = PerCommand(await server.InfoAsync("commandstats"));
        var delta = after.Select(kv => (Name: kv.Key, Calls: kv.Value.Calls - before.GetValueOrDefault(kv.Key).Calls, Usec: kv.Value.Usec - before.GetValueOrDefault(kv.Key).Usec))
            .Where(d => d.Calls > 0).OrderByDescending(d => d.Usec).ToList();
        var breakdown = string.Join(", ", delta.Select(d => string.Create(CultureInfo.InvariantCulture,
            $"{d.Name} {d.Calls / (double)operations:0.00}×{d.Usec / (double)Math.Max(1, d.Calls):0.0} µs")));
        return new RedisCost(delta.Sum(d => d.Calls) / (double)operations, cpu * 1e6 / operations, breakdown);
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Commands:0.0} commands, CPU {CpuMicroseconds:0.0} µs");

    // Every command but the INFO calls that measure.
    private static Dictionary<string, (long Calls, long Usec)> PerCommand(IGrouping<string, KeyValuePair<string, string>>[] stats) =>
        stats.SelectMany(g => g)
            .Where(kv => kv.Key.StartsWith("cmdstat_", StringComparison.Ordinal) && kv.Key != "cmdstat_info")
            .ToDictionary(kv => kv.Key["cmdstat_".Length..], kv =>
            {
                var fields = kv.Value.Split(',').Select(f => f.Split('=')).ToDictionary(f => f[0], f => f[1]);
                return (long.Parse(fields["calls"], CultureInfo.InvariantCulture), long.Parse(fields["usec"], CultureInfo.InvariantCulture));
            });
}
