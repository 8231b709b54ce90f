namespace SessionGrains;

/// <summary>What happened to a session (<see cref="SessionEvent.Kind"/>).</summary>
public enum SessionEventKind
{
    /// <summary>A session was created.</summary>
    Created = 0,

    /// <summary>A session moved to a new token and public id (<see cref="SessionEvent.PreviousSessionId"/> is the old one).</summary>
    Rotated = 1,

    /// <summary>A session ended (<see cref="SessionEvent.EndReason"/> says why).</summary>
    Ended = 2,

    /// <summary>A validation raised client or activity signals (<see cref="SessionEvent.Signals"/>).</summary>
    Signal = 3,
}

/// <summary>
/// One change of a session, as the event log holds it. It names the session by its public id and never carries a
/// token. Events of one user's sessions are in the order the user's index made the changes.
/// </summary>
/// <param name="Kind">What happened.</param>
/// <param name="UserId">The session's user.</param>
/// <param name="SessionId">The session's public id (the new one, for a rotation).</param>
/// <param name="At">When the change was made.</param>
[GenerateSerializer, Immutable, Alias("sessiongrains.session-event")]
public sealed record class SessionEvent(
    [property: Id(0)] SessionEventKind Kind,
    [property: Id(1)] string UserId,
    [property: Id(2)] string SessionId,
    [property: Id(3)] DateTimeOffset At)
{
    /// <summary>The position before every event: read or subscribe after it to get all that the log still retains.</summary>
    public const string Beginning = "0";

    /// <summary>
    /// The event's place in the log: opaque, and increasing in log order. Pass it back (a subscription's
    /// <c>after</c>, SSE's <c>Last-Event-ID</c>) to resume after this event. Empty until the event is appended.
    /// </summary>
    [Id(4)] public string Position { get; init; } = "";

    /// <summary>For <see cref="SessionEventKind.Rotated"/>: the public id the session had before.</summary>
    [Id(5)] public string? PreviousSessionId { get; init; }

    /// <summary>For <see cref="SessionEventKind.Ended"/>: why it ended.</summary>
    [Id(6)] public SessionEndReason? EndReason { get; init; }

    /// <summary>For <see cref="SessionEventKind.Signal"/>: the signals the validation raised.</summary>
    [Id(7)] public SessionSignals Signals { get; init; }
}

/// <summary>A read from the event log (<see cref="ISessionEventFeedGrain.ReadAsync"/>).</summary>
/// <param name="Events">The events read, in log order (only the user's, when the read named one).</param>
/// <param name="Position">Where the next read goes on from: after the last event looked at, whether it was returned or filtered out.</param>
/// <param name="Trimmed">
/// Events after the position read from had been trimmed from the log (it keeps the newest
/// <c>SessionStore:Events:RetainedEvents</c>) before they could be read: the reader missed some.
/// </param>
[GenerateSerializer, Immutable, Alias("sessiongrains.session-event-batch")]
public sealed record class SessionEventBatch(
    [property: Id(0)] SessionEvent[] Events,
    [property: Id(1)] string Position,
    [property: Id(2)] bool Trimmed = false);

/// <summary>
/// Reads the cluster's session event log: what subscriptions (<c>ISessionStore.SubscribeAsync</c>) and
/// <c>GET /events</c> tail. Any silo answers (a stateless worker); the log itself is in the store.
/// </summary>
[Alias("sessiongrains.session-event-feed")]
public interface ISessionEventFeedGrain : IGrainWithIntegerKey
{
    /// <summary>
    /// Up to <paramref name="max"/> events after <paramref name="after"/>, only <paramref name="userId"/>'s when it is
    /// given. When there are none yet, waits up to <paramref name="wait"/> for one before answering with none.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="after"/> is not a position of this log.</exception>
    [Alias("read")]
    Task<SessionEventBatch> ReadAsync(string after, string? userId, int max, TimeSpan wait);

    /// <summary>The position of the log's last event (<see cref="SessionEvent.Beginning"/> when it has none): read after it to get only what comes next.</summary>
    [Alias("end")]
    Task<string> EndAsync();
}
