using System.Diagnostics.Metrics;

namespace SessionGrains;

/// <summary>
/// The silo's SessionGrains instruments (meter <c>SessionGrains</c>), for OpenTelemetry or
/// <c>dotnet-counters monitor --counters SessionGrains</c>. Tags never carry a token or a user id.
/// </summary>
public sealed class SessionGrainsMetrics
{
    /// <summary>Name of the meter.</summary>
    public const string MeterName = "SessionGrains";

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/>.</summary>
    public SessionGrainsMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        Meter = meterFactory.Create(MeterName);
        StorageOperations = Meter.CreateCounter<long>("sessiongrains.storage.operations", description: "Grain state reads, writes and clears, by storage and operation.");
        SessionsEnded = Meter.CreateCounter<long>("sessiongrains.sessions.ended", description: "Sessions ended, by reason.");
        Signals = Meter.CreateCounter<long>("sessiongrains.signals", description: "Client and activity signals raised on validations and creates, by signal.");
        ValidationBatchSize = Meter.CreateHistogram<long>("sessiongrains.validation.batch_size", unit: "{validation}", description: "Validations per batch received from frontends (a lone validation is not batched).");
    }

    /// <summary>The meter all instruments belong to.</summary>
    public Meter Meter { get; }

    /// <summary>Tags: <c>storage</c> (provider name), <c>operation</c> (read, write, clear).</summary>
    public Counter<long> StorageOperations { get; }

    /// <summary>Tag: <c>reason</c> (<see cref="SessionEndReason"/>).</summary>
    public Counter<long> SessionsEnded { get; }

    /// <summary>Tag: <c>signal</c> (<see cref="SessionSignals"/> member names, or <c>CreationBurst</c>).</summary>
    public Counter<long> Signals { get; }

    /// <summary>No tags. Small batches under load mean frontends are not busy enough to gain from batching.</summary>
    public Histogram<long> ValidationBatchSize { get; }
}
