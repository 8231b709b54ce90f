using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace SessionGrains;

/// <summary>
/// Keeps a false alarm of Orleans' watchdog out of a silo's start. <c>Watchdog.Start</c> (Orleans 10.4) starts the
/// thread that checks on the participant-check thread before it sets that thread's first timestamp, so the first
/// check can measure from zero, the machine's uptime, and warn "Participant check thread has not completed for
/// 09:40:55 … deadlock", which a newcomer reads as a hang. The watchdog's warnings of its first seconds are dropped;
/// its later warnings, and its errors at any time, are logged as Orleans writes them.
/// </summary>
internal sealed class WatchdogStartFilter(TimeProvider time) : ILifecycleParticipant<ISiloLifecycle>
{
    /// <summary>The watchdog's log category.</summary>
    internal const string Category = "Orleans.Runtime.Watchdog";

    /// <summary>How long after the watchdog starts its warnings are dropped: its first check runs at once.</summary>
    internal static readonly TimeSpan QuietAfterStart = TimeSpan.FromSeconds(5);

    private long _quietFrom = long.MaxValue;

    /// <summary>Whether the silo has reached the stage that starts the watchdog.</summary>
    internal bool Armed => Interlocked.Read(ref _quietFrom) != long.MaxValue;

    public void Participate(ISiloLifecycle lifecycle) =>
        // The stage that starts the watchdog; this observer is called at its start, before or beside it.
        lifecycle.Subscribe(nameof(WatchdogStartFilter), ServiceLifecycleStage.RuntimeGrainServices, _ =>
        {
            Arm();
            return Task.CompletedTask;
        });

    /// <summary>Starts the quiet seconds: the watchdog starts now.</summary>
    internal void Arm() => Interlocked.Exchange(ref _quietFrom, time.GetTimestamp());

    /// <summary>Whether an entry of the watchdog's category at <paramref name="level"/> is written now.</summary>
    public bool Allows(LogLevel level)
    {
        var quietFrom = Interlocked.Read(ref _quietFrom);
        return level >= LogLevel.Error || quietFrom == long.MaxValue || time.GetElapsedTime(quietFrom) >= QuietAfterStart;
    }

    /// <summary>The logging rule: warnings and above of the watchdog, less those of its first seconds.</summary>
    internal LoggerFilterRule Rule() => new(providerName: null, Category, LogLevel.Warning, (_, _, level) => Allows(level));
}
