using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>Sums the SessionGrains measurements of the given silos' meters (other clusters in the test process are ignored).</summary>
public sealed class MetricRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _totals = new();

    public MetricRecorder(IEnumerable<IServiceProvider> silos)
    {
        var meters = silos.Select(s => s.GetRequiredService<SessionGrainsMetrics>().Meter).ToHashSet();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (meters.Contains(instrument.Meter))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var key = instrument.Name;
            foreach (var tag in tags)
            {
                key += $"|{tag.Key}={tag.Value}";
            }

            _totals.AddOrUpdate(key, value, (_, total) => total + value);
        });
        _listener.Start();
    }

    /// <summary>Sum of an instrument's measurements whose tags include every one of <paramref name="tags"/>.</summary>
    public long Total(string instrument, params string[] tags) =>
        _totals.Where(kv => kv.Key.Split('|')[0] == instrument && tags.All(t => kv.Key.Split('|').Contains(t))).Sum(kv => kv.Value);

    public void Dispose() => _listener.Dispose();
}
