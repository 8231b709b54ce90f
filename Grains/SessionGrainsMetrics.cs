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
        SessionsCreated = Meter.CreateCounter<long>("sessiongrains.sessions.created", unit: "{session}", description: "Sessions created (a rotation's new session is not counted).");
        Validations = Meter.CreateCounter<long>("sessiongrains.validations", unit: "{validation}", description: "Validations that reached a session grain, valid or not.");
        ExpiryCleanups = Meter.CreateCounter<long>("sessiongrains.expiry.cleanups", unit: "{session}", description: "Session records removed by the expiry check, by outcome (expired, cleared).");
        StorageOperations = Meter.CreateCounter<long>("sessiongrains.storage.operations", unit: "{operation}", description: "Grain state reads, writes and clears, by storage and operation.");
        SessionsEnded = Meter.CreateCounter<long>("sessiongrains.sessions.ended", unit: "{session}", description: "Sessions ended, by reason.");
        Signals = Meter.CreateCounter<long>("sessiongrains.signals", unit: "{signal}", description: "Client and activity signals raised on validations and creates, by signal.");
        LeasesGranted = Meter.CreateCounter<long>("sessiongrains.leases.granted", unit: "{lease}", description: "Leases lent to frontends' near caches, renewals included.");
        LeaseRecallDuration = Meter.CreateHistogram<double>("sessiongrains.leases.recall.duration", unit: "s", description: "How long a change waited for the frontends holding leases of its session to drop them.");
        LeaseRecallTimeouts = Meter.CreateCounter<long>("sessiongrains.leases.recall.timeouts", unit: "{lease}", description: "Lease holders that did not answer a recall, whose lease a change waited out instead.");
        EventsLost = Meter.CreateCounter<long>("sessiongrains.events.lost", unit: "{event}", description: "Session events whose change was made but which could not be appended to the event log (never in the Redis mode, where both are one write).");
        ValidationBatchSize = Meter.CreateHistogram<long>("sessiongrains.validation.batch_size", unit: "{validation}", description: "Validations per batch received from frontends (a lone validation is not batched).");
    }

    /// <summary>The meter all instruments belong to.</summary>
    public Meter Meter { get; }

    /// <summary>No tags.</summary>
    public Counter<long> SessionsCreated { get; }

    /// <summary>No tags: counted on the hot path, so nothing but the add.</summary>
    public Counter<long> Validations { get; }

    /// <summary>Tag: <c>outcome</c> (<c>expired</c>: ended at its check; <c>cleared</c>: an ended or handed-over record removed).</summary>
    public Counter<long> ExpiryCleanups { get; }

    /// <summary>Tags: <c>storage</c> (provider name), <c>operation</c> (read, write, clear).</summary>
    public Counter<long> StorageOperations { get; }

    /// <summary>Tag: <c>reason</c> (<see cref="SessionEndReason"/>).</summary>
    public Counter<long> SessionsEnded { get; }

    /// <summary>Tag: <c>signal</c> (<see cref="SessionSignals"/> member names, or <c>CreationBurst</c>).</summary>
    public Counter<long> Signals { get; }

    /// <summary>No tags.</summary>
    public Counter<long> LeasesGranted { get; }

    /// <summary>No tags. Its upper end is the lease length when a frontend is frozen or cut off.</summary>
    public Histogram<double> LeaseRecallDuration { get; }

    /// <summary>No tags.</summary>
    public Counter<long> LeaseRecallTimeouts { get; }

    /// <summary>No tags. Anything but zero means a consumer of the event log missed changes.</summary>
    public Counter<long> EventsLost { get; }

    /// <summary>No tags. Small batches under load mean frontends are not busy enough to gain from batching.</summary>
    public Histogram<long> ValidationBatchSize { get; }
}
