using System.Diagnostics;

namespace SessionGrains.Benchmarks;

/// <summary>One measured cell of the table.</summary>
internal sealed record class Measurement(string Target, string Workload, long Operations, long Errors, double OpsPerSecond, double P50Ms, double P99Ms, double P999Ms)
{
    /// <summary>Throughput relative to the seed design in the same workload (null when the seed has no row).</summary>
    public double? RatioToSeed { get; init; }

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
    /// CPU time the redis-server process spent per operation while this target ran alone (every operation of the
    /// round, warm-up included): what each design costs the one single-threaded server they all share. Null where
    /// the operations do unmeasured setup (delete-all creates its 50 sessions first), whose Redis time cannot be told apart.
    /// </summary>
    public double? RedisCpuMicrosecondsPerOperation { get; init; }
}

/// <summary>
/// A closed loop: <c>concurrency</c> callers, each starting its next operation when the last one ends, for a
/// fixed time (after a short warm-up that is not recorded). Bounded in time and only against loopback.
/// </summary>
internal static class LoadRunner
{
    /// <param name="operation">One operation; gets the caller's index and random source; returns the time not to count (setup inside the operation).</param>
    /// <param name="redisCpuSeconds">Reads the redis-server's CPU time so far.</param>
    public static async Task<Measurement> MeasureAsync(
        string target, Workload workload, int concurrency, TimeSpan duration, Func<int, Random, Task<TimeSpan>> operation, Func<Task<double>> redisCpuSeconds)
    {
        var redisCpuAtStart = await redisCpuSeconds();
        var operations = 0L;
        var setupExcluded = false;
        var warmUp = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(1).Ticks, duration.Ticks / 5));
        var latencies = new List<double>[concurrency];
        var errors = 0L;
        var measuredTime = new double[concurrency];
        var clock = Stopwatch.StartNew();
        var end = warmUp + duration;
        // Read by the first call that ends after the warm-up (a timer would fire late on a saturated thread pool).
        var allocatedAtWarmUpEnd = -1L;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(caller => Task.Run(async () =>
        {
            var random = new Random(caller * 7919);
            var mine = latencies[caller] = new List<double>(4096);
            while (clock.Elapsed < end)
            {
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
                if (clock.Elapsed > warmUp)
                {
                    if (Volatile.Read(ref allocatedAtWarmUpEnd) < 0)
                    {
                        Interlocked.CompareExchange(ref allocatedAtWarmUpEnd, GC.GetTotalAllocatedBytes(), -1);
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

        var redisCpu = await redisCpuSeconds() - redisCpuAtStart;
        var allocated = allocatedAtWarmUpEnd < 0 ? 0 : GC.GetTotalAllocatedBytes() - allocatedAtWarmUpEnd;
        var all = latencies.SelectMany(l => l).Order().ToArray();
        // Throughput over the time the callers spent in measured operations (setup inside an operation excluded).
        var busySeconds = measuredTime.Sum() / concurrency;
        return new Measurement(target, workload.Name, all.Length, errors,
            busySeconds > 0 ? all.Length / busySeconds : 0, Percentile(all, 0.50), Percentile(all, 0.99), Percentile(all, 0.999))
        {
            AllocatedBytesPerOperation = all.Length + errors > 0 ? (double)allocated / (all.Length + errors) : 0,
            RedisCpuMicrosecondsPerOperation = operations > 0 && !setupExcluded ? redisCpu * 1e6 / operations : null,
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
