namespace SessionGrains;

/// <summary>
/// The cluster's session event log, in the store the silos run on (one implementation per deployment mode). It
/// keeps the last <see cref="SessionEventOptions.RetainedEvents"/> events, in order, for subscriptions and
/// <c>GET /events</c> to read (through <see cref="ISessionEventFeedGrain"/>).
/// </summary>
/// <remarks>
/// The user index writes its events with the change itself where the store allows it (Redis: one script,
/// <c>RedisStateStorage.UserIndex.cs</c>); anywhere else it appends them here right after its write
/// (<c>UserSessionsGrain.Events.cs</c>).
/// </remarks>
internal interface ISessionEventLog
{
    /// <summary>Appends events, in order.</summary>
    Task AppendAsync(IReadOnlyList<SessionEvent> events);

    /// <summary>Up to <paramref name="max"/> events after <paramref name="after"/>, in order, with their positions.</summary>
    /// <exception cref="ArgumentException"><paramref name="after"/> is not a position of this log.</exception>
    Task<SessionEventBatch> ReadAsync(string after, int max);

    /// <summary>The position of the last event (<see cref="SessionEvent.Beginning"/> when there is none).</summary>
    Task<string> EndAsync();

    /// <summary>Completes when an event may have been appended after <paramref name="after"/>, or after <paramref name="wait"/>.</summary>
    Task WaitAsync(string after, TimeSpan wait);
}
