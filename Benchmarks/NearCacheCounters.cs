using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.DependencyInjection;

namespace SessionGrains.Benchmarks;

/// <summary>
/// Adds up the near cache's hits and misses that one frontend reports on the <c>SessionGrains</c> meter, so
/// a row can show its hit ratio. Instruments are told apart by their meter's scope, the host's
/// <see cref="IMeterFactory"/>; a meter made without a factory (no scope) is counted by every listener,
/// which still gives each row its own figures because targets run one at a time. Without a near cache
/// nothing is reported: zero hits.
/// </summary>
internal sealed class NearCacheCounters : IDisposable
{
    public const string HitsInstrument = "sessiongrains.nearcache.hits";
    public const string MissesInstrument = "sessiongrains.nearcache.misses";

    private readonly MeterListener _listener = new();
    private readonly StrongBox<long> _hits = new();
    private readonly StrongBox<long> _misses = new();

    public NearCacheCounters(IServiceProvider host)
    {
        var scope = host.GetService<IMeterFactory>();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == SessionGrainsMetrics.MeterName
                && (instrument.Meter.Scope is null || ReferenceEquals(instrument.Meter.Scope, scope))
                && instrument.Name is HitsInstrument or MissesInstrument)
            {
                listener.EnableMeasurementEvents(instrument, instrument.Name == HitsInstrument ? _hits : _misses);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, _, state) => Interlocked.Add(ref ((StrongBox<long>)state!).Value, value));
        _listener.SetMeasurementEventCallback<int>((_, value, _, state) => Interlocked.Add(ref ((StrongBox<long>)state!).Value, value));
        _listener.Start();
    }

    /// <summary>Hits and misses so far.</summary>
    public NearCacheCounts Read() => new(Volatile.Read(ref _hits.Value), Volatile.Read(ref _misses.Value));

    public void Dispose() => _listener.Dispose();
}

/// <summary>Near-cache validations answered from memory (hits) and sent to the grain (misses).</summary>
internal readonly record struct NearCacheCounts(long Hits, long Misses)
{
    public NearCacheCounts Add(NearCacheCounts other) => new(Hits + other.Hits, Misses + other.Misses);

    /// <summary>What was counted after <paramref name="earlier"/> was read.</summary>
    public NearCacheCounts Since(NearCacheCounts earlier) => new(Hits - earlier.Hits, Misses - earlier.Misses);

    /// <summary>hits / (hits + misses); 0 when the cache answered nothing (off, or not built yet).</summary>
    public double HitRatio => Hits + Misses > 0 ? (double)Hits / (Hits + Misses) : 0;
}
