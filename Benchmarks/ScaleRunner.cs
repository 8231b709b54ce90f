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
        var seedCreate = await RedisCost.MeasureAsync(redis, sessions, () => seed.StoreManyAsync(sessions));
        var seedTime = clock.Elapsed;
        var seedBytes = (await UsedMemoryAsync(server) - before) / sessions;
        log.WriteLine($"seed: {sessions:N0} stored in {seedTime.TotalSeconds:0} s, {seedBytes:N0} bytes each; Redis per create {seedCreate}");

        // The seed's other writes, on sessions it stored: rewriting one (its only way to record a last access) and deleting one.
        var seedIds = await SeedIdsAsync(server, Math.Min(10_000, sessions));
        var seedData = await Task.WhenAll(seedIds.Select(seed.GetAsync));
        var seedWrite = await RedisCost.MeasureAsync(redis, seedIds.Count, () => InBatchesAsync(Enumerable.Range(0, seedIds.Count), i => seed.SetAsync(seedIds[i], seedData[i]!)));
        var seedEnd = await RedisCost.MeasureAsync(redis, seedIds.Count, () => InBatchesAsync(seedIds, seed.DeleteAsync));
        log.WriteLine($"seed: Redis per session write {seedWrite}, per delete {seedEnd}");
        log.WriteLine($"seed breakdown: create {seedCreate.Breakdown}; write {seedWrite.Breakdown}; delete {seedEnd.Breakdown}");

        var grainsBytes = 0L;
        TimeSpan grainsTime;
        string workingSet;
        double remindersPerSecond;
        long reminderRows;
        RedisCost grainsCreate, grainsWrite, grainsEnd;

        // The near cache off, so every validation reaches its grain; a last-access write 1.8 s after the last one
        // (a thousandth of the 30-minute idle timeout, instead of a tenth), so one can be measured per validation.
        await using (var grains = await SessionGrainsTarget.StartCoHostedAsync(redis.ConfigurationString(0), idleDeactivation: TimeSpan.FromSeconds(5),
            nearCache: false, configure: o => o.LastAccessWriteFraction = 0.001))
        {
            before = await UsedMemoryAsync(server);
            clock.Restart();
            var active = new List<string>();
            for (var i = 0; i < Math.Min(10_000, sessions / 2); i++)
            {
                active.Add(await grains.CreateAsync($"scale-active-{i / 20}"));
            }

            grainsCreate = await RedisCost.MeasureAsync(redis, sessions - active.Count, () => grains.StoreManyAsync(sessions - active.Count));
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

            // The same sessions, active: validated again after the lazy-write interval (one last-access write each), then ended.
            await Task.Delay(TimeSpan.FromSeconds(2));
            grainsWrite = await RedisCost.MeasureAsync(redis, active.Count, () => InBatchesAsync(active, grains.ValidateAsync));
            grainsEnd = await RedisCost.MeasureAsync(redis, active.Count, () => InBatchesAsync(active, grains.DeleteAsync));
            log.WriteLine($"SessionGrains: Redis per create {grainsCreate}, per last-access write {grainsWrite}, per end {grainsEnd}");
            log.WriteLine($"SessionGrains breakdown: create {grainsCreate.Breakdown}; last-access write {grainsWrite.Breakdown}; end {grainsEnd.Breakdown}");

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
            report.AppendLine(CultureInfo.InvariantCulture, $"| Redis per create: commands (`INFO commandstats`, a script's own calls included), CPU time (`INFO cpu`) | {seedCreate} | {grainsCreate} ({grainsCreate.CpuMicroseconds / seedCreate.CpuMicroseconds:0.00}×) |");
            report.AppendLine(CultureInfo.InvariantCulture, $"| Redis per last-access write (seed: its `set` of the session, SETEX+SADD+EXPIRE) | {seedWrite} | {grainsWrite} ({grainsWrite.CpuMicroseconds / seedWrite.CpuMicroseconds:0.00}×) |");
            report.AppendLine(CultureInfo.InvariantCulture, $"| Redis per end (seed: its `delete`, GET then DEL+SREM) | {seedEnd} | {grainsEnd} ({grainsEnd.CpuMicroseconds / seedEnd.CpuMicroseconds:0.00}×) |");
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

    /// <summary>Runs <paramref name="operation"/> on every item, 200 at a time, as concurrent callers would.</summary>
    private static async Task InBatchesAsync<T>(IEnumerable<T> items, Func<T, Task> operation)
    {
        foreach (var chunk in items.Chunk(200))
        {
            await Task.WhenAll(chunk.Select(operation));
        }
    }

    /// <summary>Ids of <paramref name="count"/> sessions the seed stored (in database 1).</summary>
    private static async Task<List<string>> SeedIdsAsync(IServer server, int count)
    {
        var ids = new List<string>(count);
        await foreach (var key in server.KeysAsync(1, "sess:*", pageSize: 1000))
        {
            ids.Add(key.ToString()["sess:".Length..]);
            if (ids.Count == count)
            {
                break;
            }
        }

        return ids;
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
