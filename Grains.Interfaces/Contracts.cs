using System.Collections.Immutable;
using System.Net;
using System.Text;
using System.Text.Json.Serialization;

namespace SessionGrains;

/// <summary>Where a request came from: recorded at creation and on each validation.</summary>
/// <remarks>The store keeps only what <see cref="Normalize"/> returns, whoever calls it.</remarks>
[GenerateSerializer, Immutable, SuppressReferenceTracking, Alias("sessiongrains.client-info")]
public sealed record class ClientInfo(
    [property: Id(0)] string? IpAddress,
    [property: Id(1)] string? UserAgent)
{
    /// <summary>Longest User-Agent kept, in characters; a longer one is cut to this length.</summary>
    public const int MaxUserAgentLength = 512;

    /// <summary>
    /// The client details as the store keeps them: the address in its canonical form (<see cref="IPAddress.ToString"/>),
    /// the User-Agent cut to <see cref="MaxUserAgentLength"/> characters, empty values as null. The same instance when
    /// nothing changes. Null for null.
    /// </summary>
    /// <exception cref="ArgumentException"><see cref="IpAddress"/> is not an IPv4 or IPv6 address.</exception>
    public static ClientInfo? Normalize(ClientInfo? client)
    {
        if (client is null)
        {
            return null;
        }

        var ip = CanonicalAddress(client.IpAddress);
        var userAgent = client.UserAgent switch
        {
            { Length: 0 } => null,
            { Length: > MaxUserAgentLength } agent => agent[..(char.IsHighSurrogate(agent[MaxUserAgentLength - 1]) ? MaxUserAgentLength - 1 : MaxUserAgentLength)],
            var agent => agent,
        };
        return ReferenceEquals(ip, client.IpAddress) && ReferenceEquals(userAgent, client.UserAgent) ? client : new ClientInfo(ip, userAgent);
    }

    /// <summary>Bytes the client details take in a stored session (UTF-8), for the session data limit.</summary>
    public static int StoredBytes(ClientInfo? client) => client is null ? 0
        : (client.IpAddress is { } ip ? Encoding.UTF8.GetByteCount(ip) : 0) + (client.UserAgent is { } agent ? Encoding.UTF8.GetByteCount(agent) : 0);

    private static string? CanonicalAddress(string? address)
    {
        if (string.IsNullOrEmpty(address))
        {
            return null;
        }

        if (!IPAddress.TryParse(address, out var parsed))
        {
            throw new ArgumentException("The client's IP address must be one IPv4 or IPv6 address.", "client");
        }

        // The hot path sends canonical text: keep that string rather than allocate an equal one.
        Span<char> canonical = stackalloc char[64];
        return parsed.TryFormat(canonical, out var written) && canonical[..written].SequenceEqual(address) ? address : parsed.ToString();
    }
}

/// <summary>What happens when a user already has the maximum number of live sessions.</summary>
public enum SessionLimitPolicy
{
    /// <summary>End the user's oldest session to make room for the new one.</summary>
    EvictOldest = 0,

    /// <summary>Refuse the new session (<see cref="SessionLimitExceededException"/>, HTTP 409).</summary>
    RejectNew = 1,
}

/// <summary>Why a session ended; carried to the user index and to logs.</summary>
public enum SessionEndReason
{
    /// <summary>Logout with the token.</summary>
    Deleted = 0,

    /// <summary>Ended by its public id ("sign out that device").</summary>
    Revoked = 1,

    /// <summary>Ended by "sign out everywhere".</summary>
    RevokedAll = 2,

    /// <summary>Made room under the per-user limit.</summary>
    Evicted = 3,

    /// <summary>Idle timeout or absolute lifetime passed.</summary>
    Expired = 4,

    /// <summary>A client or activity signal whose policy is <see cref="SignalPolicy.Revoke"/>.</summary>
    SignalRevoked = 5,

    /// <summary>
    /// Only in session events: a create whose index entry was written but whose session was not (a storage failure
    /// between the two writes). The create failed and its token was never returned; the event takes back its created one.
    /// </summary>
    Abandoned = 6,
}

/// <summary>
/// What a validation noticed about the request (reported on <see cref="SessionInfo.Signals"/>, logged and
/// counted). What happens then is the deployment's <see cref="SignalPolicy"/> for that signal.
/// </summary>
[Flags]
public enum SessionSignals
{
    /// <summary>Nothing unusual.</summary>
    None = 0,

    /// <summary>The client's network (IP address under the configured prefix) differs from the last one seen.</summary>
    IpChanged = 1,

    /// <summary>The User-Agent differs from the last one seen.</summary>
    UserAgentChanged = 2,

    /// <summary>More validations within the burst window than the threshold (e.g. 50 in 10 s).</summary>
    RequestBurst = 4,

    /// <summary>More distinct networks within the window than the threshold (e.g. 5 in a minute).</summary>
    ManyNetworks = 8,

    /// <summary>The session is being throttled by policy; the store throws <see cref="SessionThrottledException"/>.</summary>
    Throttled = 16,
}

/// <summary>What the store does when it notices a signal.</summary>
public enum SignalPolicy
{
    /// <summary>Nothing: the signal is not even reported.</summary>
    Ignore = 0,

    /// <summary>Report it on the result, log it and count it; the request proceeds.</summary>
    Warn = 1,

    /// <summary>Refuse the request for a while (<see cref="SessionThrottledException"/>, HTTP 429); the session stays.</summary>
    Throttle = 2,

    /// <summary>End the session at once; the request gets "not found".</summary>
    Revoke = 3,
}

/// <summary>A live session as the store reports it. Never carries the token.</summary>
/// <remarks>
/// Without reference tracking (it has no cycles and is never shared within a message): a batch of validation
/// answers otherwise overflows the serializer's reference table, whose hashing showed in the silo's profile.
/// </remarks>
[GenerateSerializer, Immutable, SuppressReferenceTracking, Alias("sessiongrains.session-info")]
public sealed record class SessionInfo(
    [property: Id(0)] string SessionId,
    [property: Id(1)] string UserId,
    [property: Id(2)] string? Role,
    [property: Id(3)] DateTimeOffset CreatedAt,
    [property: Id(4)] DateTimeOffset LastAccessedAt,
    [property: Id(5)] TimeSpan IdleTimeout,
    [property: Id(6)] DateTimeOffset AbsoluteExpiresAt,
    [property: Id(7)] ClientInfo? CreatedFrom,
    [property: Id(8)] ClientInfo? LastSeenFrom,
    [property: Id(9)] ImmutableDictionary<string, string> Metadata,
    [property: Id(10)] long Version,
    [property: Id(11)] ReadOnlyMemory<byte> Payload,
    [property: Id(12)] SessionSignals Signals = SessionSignals.None,
    [property: Id(13)] int IpChanges = 0,
    [property: Id(14)] int UserAgentChanges = 0)
{
    /// <summary>When the session ends unless used again: the earlier of idle expiry and absolute expiry.</summary>
    [JsonIgnore]
    public DateTimeOffset ExpiresAt => SessionExpiry.ExpiresAt(LastAccessedAt, IdleTimeout, AbsoluteExpiresAt);
}

/// <summary>One entry of a user's session list ("your devices"), served by the user index without touching the session.</summary>
/// <remarks><see cref="LastAccessedAt"/> and <see cref="LastSeenFrom"/> lag the session by at most the
/// lazy-write interval (a tenth of the idle timeout by default).</remarks>
[GenerateSerializer, Immutable, Alias("sessiongrains.session-summary")]
public sealed record class SessionSummary(
    [property: Id(0)] string SessionId,
    [property: Id(1)] string? Role,
    [property: Id(2)] DateTimeOffset CreatedAt,
    [property: Id(3)] DateTimeOffset LastAccessedAt,
    [property: Id(4)] TimeSpan IdleTimeout,
    [property: Id(5)] DateTimeOffset AbsoluteExpiresAt,
    [property: Id(6)] ClientInfo? CreatedFrom,
    [property: Id(7)] ClientInfo? LastSeenFrom)
{
    /// <summary>When the session ends unless used again.</summary>
    [JsonIgnore]
    public DateTimeOffset ExpiresAt => SessionExpiry.ExpiresAt(LastAccessedAt, IdleTimeout, AbsoluteExpiresAt);

    /// <summary>The summary of a session.</summary>
    public static SessionSummary From(SessionInfo session) => new(
        session.SessionId, session.Role, session.CreatedAt, session.LastAccessedAt, session.IdleTimeout,
        session.AbsoluteExpiresAt, session.CreatedFrom, session.LastSeenFrom);
}

/// <summary>One page of a user's live sessions, oldest first.</summary>
/// <param name="Sessions">The sessions of this page.</param>
/// <param name="Next">Cursor for the next page, or null when this is the last page.</param>
[GenerateSerializer, Immutable, Alias("sessiongrains.session-page")]
public sealed record class SessionPage(
    [property: Id(0)] ImmutableArray<SessionSummary> Sessions,
    [property: Id(1)] string? Next);

/// <summary>What a caller may choose when creating a session; anything left null takes the store's default.</summary>
[GenerateSerializer, Immutable, Alias("sessiongrains.session-create-options")]
public sealed record class SessionCreateOptions
{
    /// <summary>The user's role, stored with the session.</summary>
    [Id(0)] public string? Role { get; init; }

    /// <summary>String metadata (counted against the metadata size limit, 64 KiB by default).</summary>
    [Id(1)] public ImmutableDictionary<string, string>? Metadata { get; init; }

    /// <summary>Sliding idle timeout; null takes the configured default (30 minutes).</summary>
    [Id(2)] public TimeSpan? IdleTimeout { get; init; }

    /// <summary>Absolute lifetime from creation; null takes the configured default (12 hours).</summary>
    [Id(3)] public TimeSpan? AbsoluteTimeout { get; init; }

    /// <summary>IP address and User-Agent of the client creating the session.</summary>
    [Id(4)] public ClientInfo? Client { get; init; }

    /// <summary>Opaque bytes kept with the session (the ASP.NET Core adapters keep their data here).</summary>
    [Id(5)] public ReadOnlyMemory<byte> Payload { get; init; }

    /// <summary>Overrides the configured per-user session limit for this create.</summary>
    [Id(6)] public int? MaxSessionsPerUser { get; init; }

    /// <summary>Overrides the configured limit policy for this create.</summary>
    [Id(7)] public SessionLimitPolicy? LimitPolicy { get; init; }
}

/// <summary>A change to a session. Metadata entries with a null value are removed; null members leave things as they are.</summary>
[GenerateSerializer, Immutable, Alias("sessiongrains.session-update")]
public sealed record class SessionUpdate
{
    /// <summary>Metadata to set (non-null values) or remove (null values).</summary>
    [Id(0)] public ImmutableDictionary<string, string?>? Metadata { get; init; }

    /// <summary>A new role, or null to keep the current one.</summary>
    [Id(1)] public string? Role { get; init; }

    /// <summary>A new payload, or null to keep the current one (an empty array clears it).</summary>
    [Id(2)] public byte[]? Payload { get; init; }
}

/// <summary>The single definition of when a session ends.</summary>
public static class SessionExpiry
{
    /// <summary>The earlier of idle expiry (last access plus idle timeout) and absolute expiry.</summary>
    public static DateTimeOffset ExpiresAt(DateTimeOffset lastAccessedAt, TimeSpan idleTimeout, DateTimeOffset absoluteExpiresAt)
    {
        var idleExpiresAt = lastAccessedAt + idleTimeout;
        return idleExpiresAt < absoluteExpiresAt ? idleExpiresAt : absoluteExpiresAt;
    }

    /// <summary>A session is expired from the instant its expiry is reached (to the tick).</summary>
    public static bool IsExpired(DateTimeOffset now, DateTimeOffset expiresAt) => now >= expiresAt;
}
