using System.Diagnostics;
using System.Globalization;
using System.Text;
using StackExchange.Redis;

namespace SessionGrains.Benchmarks;

/// <summary>
/// <c>--scale N</c>: stores N sessions in the seed layout and in SessionGrains (co-hosted, Redis storage) and
/// reports Redis memory per session, the silo's memory with N stored and 10k active, the reminder table's
/// load at rest, and how long a silo takes to start with N stored.
/// </summary>
internal static class ScaleRunner
{
    public static async Task<string> RunAsync(int sessions, string resultsDirectory, TextWriter log)
    {
        await using var redis = await RedisProcess.StartAsync();
        var server = redis.Connection.GetServers()[0];
        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"Scale run {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC on {Environment.ProcessorCount} cores, {sessions:N0} sessions.");
        report.AppendLine();
        report.AppendLine("| figure | seed design | SessionGrains |");
        report.AppendLine("|---|---:|---:|");

        var seed = new SeedRedisStore(redis.Connection.GetDatabase(1), sliding: false);
        var before = await UsedMemoryAsync(server);
        var clock = Stopwatch.StartNew();
        await seed.StoreManyAsync(sessions);
        var seedTime = clock.Elapsed;
        var seedBytes = (await UsedMemoryAsync(server) - before) / sessions;
        log.WriteLine($"seed: {sessions:N0} stored in {seedTime.TotalSeconds:0} s, {seedBytes:N0} bytes each");

        var grainsBytes = 0L;
        TimeSpan grainsTime;
        string workingSet;
        double remindersPerSecond;
        long reminderRows;
        await using (var grains = await SessionGrainsTarget.StartCoHostedAsync(redis.ConfigurationString(0), idleDeactivation: TimeSpan.FromSeconds(5)))
        {
            before = await UsedMemoryAsync(server);
            clock.Restart();
            var active = new List<string>();
            for (var i = 0; i < Math.Min(10_000, sessions); i++)
            {
                active.Add(await grains.CreateAsync($"scale-active-{i / 20}"));
            }

            await grains.StoreManyAsync(sessions - active.Count);
            grainsTime = clock.Elapsed;
            grainsBytes = (await UsedMemoryAsync(server) - before) / sessions;
            log.WriteLine($"SessionGrains: {sessions:N0} stored in {grainsTime.TotalSeconds:0} s, {grainsBytes:N0} bytes each");

            // Let idle grains deactivate (sessions, user indexes, expiry buckets), then keep 10k sessions busy.
            await WaitForIdleGrainsToLeaveAsync(grains);
            var atRest = string.Join(", ", (await grains.ActivationsAsync()).Where(kv => kv.Value > 0).Select(kv => $"{kv.Key} {kv.Value:N0}"));
            log.WriteLine($"activations at rest: {atRest}");
            var idleMemory = ManagedMemory();
            await Task.WhenAll(active.Select(grains.ValidateAsync));
            workingSet = $"{idleMemory} with none active (left active: {(atRest.Length == 0 ? "none" : atRest)}); {ManagedMemory()} with {active.Count:N0} active ({await grains.ActiveSessionGrainsAsync():N0} activations)";
            log.WriteLine($"silo process: {workingSet}");

            // At rest: nothing active, nothing due; what is left is the silo's own housekeeping.
            await WaitForIdleGrainsToLeaveAsync(grains);
            await Task.Delay(TimeSpan.FromSeconds(5));
            await server.ExecuteAsync("CONFIG", "RESETSTAT");
            await Task.Delay(TimeSpan.FromSeconds(10));
            remindersPerSecond = CommandCalls(await server.InfoAsync("commandstats")) / 10.0;
            reminderRows = await ReminderRowsAsync(server, redis.Connection.GetDatabase(0));
        }

        clock.Restart();
        await using (var restarted = await SessionGrainsTarget.StartCoHostedAsync(redis.ConfigurationString(0)))
        {
            var startTime = clock.Elapsed;
            report.AppendLine(CultureInfo.InvariantCulture, $"| time to store {sessions:N0} sessions | {seedTime.TotalSeconds:0} s | {grainsTime.TotalSeconds:0} s |");
            report.AppendLine(CultureInfo.InvariantCulture, $"| Redis memory per session (`INFO memory`) | {seedBytes:N0} B | {grainsBytes:N0} B (session + index entry + expiry-bucket entry) |");
            report.AppendLine(CultureInfo.InvariantCulture, $"| reminder table rows (one per expiry bucket shard, not per session) | — | {reminderRows:N0} |");
            report.AppendLine(CultureInfo.InvariantCulture, $"| silo process memory (GC heap / working set) | — | {workingSet} |");
            report.AppendLine(CultureInfo.InvariantCulture, $"| Redis commands per second at rest, nothing active (reminder table, membership) | 0 | {remindersPerSecond:0.0} |");
            report.AppendLine(CultureInfo.InvariantCulture, $"| silo start with them stored | — | {startTime.TotalSeconds:0.0} s |");
        }

        var text = report.ToString();
        Directory.CreateDirectory(resultsDirectory);
        await File.WriteAllTextAsync(Path.Combine(resultsDirectory, "scale.md"), text);
        return text;
    }

    private static async Task WaitForIdleGrainsToLeaveAsync(SessionGrainsTarget grains)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        string[] idleClasses = ["SessionGrain", "UserSessionsGrain", "SessionExpiryBucketGrain"];
        while ((await grains.ActivationsAsync()).Where(kv => idleClasses.Contains(kv.Key)).Sum(kv => kv.Value) > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(1000);
        }
    }

    /// <summary>Rows of the Redis reminder table (a sorted set per service).</summary>
    private static async Task<long> ReminderRowsAsync(IServer server, IDatabase database)
    {
        long rows = 0;
        await foreach (var key in server.KeysAsync(0, "*reminder*"))
        {
            rows += await database.SortedSetLengthAsync(key);
        }

        return rows;
    }

    private static async Task<long> UsedMemoryAsync(IServer server) =>
        long.Parse((await server.InfoAsync("memory")).SelectMany(g => g).First(kv => kv.Key == "used_memory").Value, CultureInfo.InvariantCulture);

    private static long CommandCalls(IGrouping<string, KeyValuePair<string, string>>[] stats) =>
        stats.SelectMany(g => g).Where(kv => kv.Key.StartsWith("cmdstat_", StringComparison.Ordinal) && !kv.Key.Contains("config", StringComparison.Ordinal))
            .Sum(kv => long.Parse(kv.Value.Split(',')[0].Split('=')[1], CultureInfo.InvariantCulture));

    private static string ManagedMemory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        using var process = Process.GetCurrentProcess();
        return $"{GC.GetTotalMemory(forceFullCollection: true) / 1_048_576:N0} MB / {process.WorkingSet64 / 1_048_576:N0} MB";
    }
}
