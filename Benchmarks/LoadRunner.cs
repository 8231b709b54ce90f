using System.Diagnostics;

namespace SessionGrains.Benchmarks;

/// <summary>One measured cell of the table.</summary>
internal sealed record class Measurement(string Target, string Workload, long Operations, long Errors, double OpsPerSecond, double P50Ms, double P99Ms, double P999Ms)
{
    /// <summary>Throughput relative to the seed design in the same workload (null when the seed has no row).</summary>
    public double? RatioToSeed { get; init; }

    /// <summary>For a row on PostgreSQL: throughput relative to the seed's SQL store in the same workload (null on Redis, or when that store has no row).</summary>
    public double? RatioToSeedSql { get; init; }

    /// <summary>The server this row's target keeps its sessions in, whose CPU <see cref="StoreCpuMicrosecondsPerOperation"/> is.</summary>
    public StoreServer Server { get; init; } = StoreServer.Redis;

    /// <summary>How many rounds this row is the median of, and the slowest and fastest of them.</summary>
    public int Rounds { get; init; } = 1;

    public double MinOpsPerSecond { get; init; }

    public double MaxOpsPerSecond { get; init; }

    /// <summary>
    /// Bytes allocated in the benchmark process per measured operation: the caller's side for the peers and an
    /// external client, the caller and the silo together co-hosted. Garbage per call is what gen-0 collections pay for.
    /// </summary>
    public double AllocatedBytesPerOperation { get; init; }

    /// <summary>
    /// CPU time the <see cref="Server"/> spent per operation while this target ran alone (every operation of the
    /// round, warm-up included): the redis-server process (what each design costs the one single-threaded server
    /// they all share), or PostgreSQL's postmaster and all its backends. Null where the operations do unmeasured
    /// setup (delete-all creates its 50 sessions first), whose store time cannot be told apart.
    /// </summary>
    public double? StoreCpuMicrosecondsPerOperation { get; init; }

    /// <summary>Near-cache hits / (hits + misses) in the measured part; null for a store without a near cache or a workload that is not mostly validations.</summary>
    public double? HitRatio { get; init; }

    public long NearCacheHits { get; init; }

    public long NearCacheMisses { get; init; }
}

/// <summary>
/// A closed loop: <c>concurrency</c> callers, each starting its next operation when the last one ends, for a
/// fixed time (after a short warm-up that is not recorded). With an offered rate, each caller instead starts
/// its operations on a fixed schedule (running late ones back to back until it catches up). Bounded in time
/// and only against loopback.
/// </summary>
internal static class LoadRunner
{
    /// <param name="operation">One operation; gets the caller's index and random source; returns the time not to count (setup inside the operation).</param>
    /// <param name="server">The server the target keeps its sessions in.</param>
    /// <param name="storeCpuSeconds">Reads that server's CPU time so far.</param>
    /// <param name="warmUp">Unrecorded time before the measured <paramref name="duration"/>; default a fifth of it, at most a second.</param>
    /// <param name="offeredRate">Operations per second over all callers; null: closed loop, as fast as answers come.</param>
    /// <param name="nearCache">Reads the target's near-cache counts, for the hit ratio; null: no hit ratio.</param>
    public static async Task<Measurement> MeasureAsync(
        string target, Workload workload, int concurrency, TimeSpan duration, Func<int, Random, Task<TimeSpan>> operation, StoreServer server, Func<Task<double>> storeCpuSeconds,
        TimeSpan? warmUp = null, double? offeredRate = null, Func<NearCacheCounts?>? nearCache = null)
    {
        var storeCpuAtStart = await storeCpuSeconds();
        var operations = 0L;
        var setupExcluded = false;
        var warmUpTime = warmUp ?? TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(1).Ticks, duration.Ticks / 5));
        var latencies = new List<double>[concurrency];
        var errors = 0L;
        var measuredTime = new double[concurrency];
        // Each caller's time between the starts of its operations at the offered rate.
        var interval = offeredRate is { } rate ? TimeSpan.FromSeconds(concurrency / rate) : TimeSpan.Zero;
        var clock = Stopwatch.StartNew();
        var end = warmUpTime + duration;
        // Read by the first call that ends after the warm-up (a timer would fire late on a saturated thread pool).
        var allocatedAtWarmUpEnd = warmUpTime > TimeSpan.Zero ? -1L : GC.GetTotalAllocatedBytes();
        var cacheAtWarmUpEnd = warmUpTime > TimeSpan.Zero ? null : nearCache?.Invoke();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(caller => Task.Run(async () =>
        {
            var random = new Random(caller * 7919);
            var mine = latencies[caller] = new List<double>(4096);
            // The callers' schedules are spread over one interval, not all due at once.
            var due = interval * caller / concurrency;
            while (offeredRate is null ? clock.Elapsed < end : due < end)
            {
                if (offeredRate is not null)
                {
                    var wait = due - clock.Elapsed;
                    due += interval;
                    if (wait > TimeSpan.FromMilliseconds(1))
                    {
                        await Task.Delay(wait);
                    }
                }

                var started = Stopwatch.GetTimestamp();
                var excluded = TimeSpan.Zero;
                var failed = false;
                try
                {
                    excluded = await operation(caller, random);
                }
                catch (Exception exception) when (exception is not OutOfMemoryException)
                {
                    failed = true;
                }

                var took = Stopwatch.GetElapsedTime(started) - excluded;
                Interlocked.Increment(ref operations);
                if (excluded > TimeSpan.Zero)
                {
                    setupExcluded = true;
                }
                if (clock.Elapsed > warmUpTime)
                {
                    if (Volatile.Read(ref allocatedAtWarmUpEnd) < 0 && Interlocked.CompareExchange(ref allocatedAtWarmUpEnd, GC.GetTotalAllocatedBytes(), -1) < 0)
                    {
                        cacheAtWarmUpEnd = nearCache?.Invoke();
                    }

                    if (failed)
                    {
                        Interlocked.Increment(ref errors);
                    }
                    else
                    {
                        mine.Add(took.TotalMilliseconds);
                        measuredTime[caller] += took.TotalSeconds;
                    }
                }
            }
        })));

        var storeCpu = await storeCpuSeconds() - storeCpuAtStart;
        var allocated = allocatedAtWarmUpEnd < 0 ? 0 : GC.GetTotalAllocatedBytes() - allocatedAtWarmUpEnd;
        var cache = nearCache?.Invoke() is { } counts && cacheAtWarmUpEnd is { } atWarmUpEnd ? counts.Since(atWarmUpEnd) : (NearCacheCounts?)null;
        var all = latencies.SelectMany(l => l).Order().ToArray();
        // Closed loop: throughput over the time the callers spent in measured operations (setup inside an
        // operation excluded). At an offered rate: what was served in the measured time.
        var busySeconds = offeredRate is null ? measuredTime.Sum() / concurrency : duration.TotalSeconds;
        return new Measurement(target, workload.Name, all.Length, errors,
            busySeconds > 0 ? all.Length / busySeconds : 0, Percentile(all, 0.50), Percentile(all, 0.99), Percentile(all, 0.999))
        {
            AllocatedBytesPerOperation = all.Length + errors > 0 ? (double)allocated / (all.Length + errors) : 0,
            Server = server,
            StoreCpuMicrosecondsPerOperation = operations > 0 && !setupExcluded ? storeCpu * 1e6 / operations : null,
            HitRatio = cache?.HitRatio,
            NearCacheHits = cache?.Hits ?? 0,
            NearCacheMisses = cache?.Misses ?? 0,
        };
    }

    /// <summary>A one-off burst (not a timed loop): its latencies, failures and wall time as a row of one round.</summary>
    public static Measurement FromBurst(string target, Workload workload, IReadOnlyList<double> latenciesMs, long errors, TimeSpan wallTime, long allocatedBytes)
    {
        var all = latenciesMs.Order().ToArray();
        var opsPerSecond = wallTime > TimeSpan.Zero ? all.Length / wallTime.TotalSeconds : 0;
        return new Measurement(target, workload.Name, all.Length, errors, opsPerSecond, Percentile(all, 0.50), Percentile(all, 0.99), Percentile(all, 0.999))
        {
            MinOpsPerSecond = opsPerSecond,
            MaxOpsPerSecond = opsPerSecond,
            AllocatedBytesPerOperation = all.Length + errors > 0 ? (double)allocatedBytes / (all.Length + errors) : 0,
        };
    }

    /// <summary>The round with the median throughput (the upper one of an even count), with the range of all and every round's errors.</summary>
    public static Measurement Median(IReadOnlyList<Measurement> rounds)
    {
        var ordered = rounds.OrderBy(r => r.OpsPerSecond).ToList();
        return ordered[ordered.Count / 2] with
        {
            Errors = rounds.Sum(r => r.Errors),
            Rounds = rounds.Count,
            MinOpsPerSecond = ordered[0].OpsPerSecond,
            MaxOpsPerSecond = ordered[^1].OpsPerSecond,
        };
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
}
