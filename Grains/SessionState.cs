using System.Text.Json.Serialization;
using Orleans.Storage;

namespace SessionGrains;

/// <summary>State whose storage entry should expire by itself (the storage backstop).</summary>
internal interface IExpiringState
{
    /// <summary>When the stored entry may be dropped, before any margin; null for "never".</summary>
    DateTimeOffset? DiscardableAfter { get; }
}

/// <summary>What a session grain persists. Empty (all null) when there is no session.</summary>
[GenerateSerializer, Alias("sessiongrains.session-state")]
internal sealed class SessionState : IExpiringState
{
    /// <summary>The session as last written; its last-access time may lag the grain's memory (lazy write).</summary>
    [Id(0)] public SessionInfo? Session { get; set; }

    /// <summary>After a rotation with a grace window: the session id that now answers for this token.</summary>
    [Id(1)] public string? RotatedTo { get; set; }

    /// <summary>End of the rotation grace window.</summary>
    [Id(2)] public DateTimeOffset RotationGraceEndsAt { get; set; }

    /// <summary>
    /// Until when frontends may hold leases of this session (real time), written before a lease is lent: a new
    /// activation after a crash waits leases of the lost one out before its first change. Null: none.
    /// </summary>
    [Id(3)] public DateTimeOffset? LeasesUntil { get; set; }

    public DateTimeOffset? DiscardableAfter =>
        Session?.AbsoluteExpiresAt ?? (RotatedTo is null ? null : RotationGraceEndsAt);
}

/// <summary>
/// Where a <see cref="SessionState"/> is stored, and the one write of it made outside its grain: the user
/// index stores a new session here without activating the session grain. Both grains go through this type,
/// so a change to the record reaches its two writers.
/// </summary>
internal static class SessionRecord
{
    /// <summary>Name of the session grain's persisted state.</summary>
    internal const string StateName = "session";

    /// <summary>The grain id a session's state is stored under.</summary>
    internal static GrainId StorageIdOf(string sessionId) => GrainId.Create(GrainTypeNames.Session, sessionId);

    /// <summary>
    /// Stores a new session's record without its grain. The write is conditional (no etag: the key must not
    /// exist), so a taken id is refused (false), not overwritten.
    /// </summary>
    internal static async Task<bool> TryCreateAsync(IGrainStorage storage, SessionInfo session)
    {
        var state = new GrainState<SessionState>(new SessionState { Session = session });
        try
        {
            await storage.WriteStateAsync(StateName, StorageIdOf(session.SessionId), state);
            return true;
        }
        catch (InconsistentStateException)
        {
            return false;
        }
    }
}

/// <summary>What a user index persists: the user's sessions by id.</summary>
[GenerateSerializer, Alias("sessiongrains.user-sessions-state")]
internal sealed class UserSessionsState : IExpiringState
{
    [Id(0)] public Dictionary<string, SessionSummary> Sessions { get; set; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Events of the change about to be written; never stored. A storage that can append them to the event log
    /// with the write itself (Redis) does, and empties this; otherwise the grain appends what is left after the
    /// write (UserSessionsGrain.Events.cs).
    /// </summary>
    [NonSerialized, JsonIgnore]
    internal readonly List<SessionEvent> Unpublished = [];

    // The index may go when its last session has passed its absolute expiry.
    public DateTimeOffset? DiscardableAfter =>
        Sessions.Count == 0 ? null : Sessions.Values.Max(s => s.AbsoluteExpiresAt);
}

/// <summary>What a counter shard persists.</summary>
[GenerateSerializer, Alias("sessiongrains.session-counter-state")]
internal sealed class SessionCounterState
{
    [Id(0)] public long Count { get; set; }
}

/// <summary>
/// What an expiry bucket persists in its own record: how many pages of session ids it has written
/// (<see cref="SessionExpiryBucketPage"/>).
/// </summary>
[GenerateSerializer, Alias("sessiongrains.expiry-bucket-state")]
internal sealed class SessionExpiryBucketState : IExpiringState
{
    /// <summary>Ids kept in the record itself by buckets stored before pages existed; read, moved to a page, never written.</summary>
    [Id(0)] public HashSet<string> SessionIds { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The bucket's due time (also encoded in its key).</summary>
    [Id(1)] public DateTimeOffset DueAt { get; set; }

    /// <summary>Pages written: numbered 0 to <c>Pages - 1</c>.</summary>
    [Id(2)] public int Pages { get; set; }

    public DateTimeOffset? DiscardableAfter => SessionExpiryBuckets.DiscardableAfter(DueAt);
}

/// <summary>One page of an expiry bucket: the ids filed in one flush. Written once, deleted when the bucket is done.</summary>
[GenerateSerializer, Alias("sessiongrains.expiry-bucket-page")]
internal sealed class SessionExpiryBucketPage : IExpiringState
{
    [Id(0)] public HashSet<string> SessionIds { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The bucket's due time, so the page's storage entry expires with the bucket's.</summary>
    [Id(1)] public DateTimeOffset DueAt { get; set; }

    public DateTimeOffset? DiscardableAfter => SessionExpiryBuckets.DiscardableAfter(DueAt);
}
