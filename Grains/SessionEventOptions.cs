namespace SessionGrains;

/// <summary>The session event log (<c>SessionStore:Events:...</c>; docs/events.md).</summary>
public sealed class SessionEventOptions
{
    /// <summary>
    /// Whether the grains write events. Off, subscriptions and <c>GET /events</c> see nothing new; creates, rotations
    /// and ends cost what they did before events existed. Default true.
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// How many events the log keeps: older ones are trimmed as new ones arrive (Redis, in memory) or by the hourly
    /// sweep (PostgreSQL). A consumer that falls further behind than this misses the trimmed ones. Default 100,000.
    /// </summary>
    public int RetainedEvents { get; set; } = 100_000;
}
