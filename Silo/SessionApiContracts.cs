using System.Collections.Immutable;
using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.Json.Serialization;
using Orleans;
using Orleans.Runtime;

namespace SessionGrains.Silo;

// Request bodies are checked by ASP.NET Core's validation (AddValidation) before a handler runs: a 400 names each
// field. Limits that depend on the cluster's settings (the longest lifetime, the user id's characters) are the store's.

/// <summary>Body of <c>POST /sessions</c>. Timeouts are in seconds (a century at most; the cluster may allow less).</summary>
public sealed record class CreateSessionRequest(
    [property: Required, StringLength(SessionIds.MaxUserIdLength)] string UserId,
    string? Role = null,
    ImmutableDictionary<string, string>? Metadata = null,
    [property: Range(0d, CreateSessionRequest.MaxSeconds, MinimumIsExclusive = true)] double? IdleTimeoutSeconds = null,
    [property: Range(0d, CreateSessionRequest.MaxSeconds, MinimumIsExclusive = true)] double? AbsoluteTimeoutSeconds = null)
{
    /// <summary>The longest span in seconds a request may name: a century.</summary>
    internal const double MaxSeconds = 100 * 365 * 86400.0;
}

/// <summary>Body of <c>PATCH /sessions/current</c>: metadata entries with a null value are removed.</summary>
public sealed record class UpdateSessionRequest(
    ImmutableDictionary<string, string?>? Metadata = null,
    string? Role = null,
    [property: Range(0, long.MaxValue)] long? ExpectedVersion = null);

/// <summary>Where a request came from, as the API shows it.</summary>
public sealed record class ClientResponse(string? Ip, string? UserAgent)
{
    internal static ClientResponse? From(ClientInfo? client) => client is null ? null : new(client.IpAddress, client.UserAgent);
}

/// <summary>Body of <c>POST /users/{userId}/sessions/revoke-all</c>: the session to keep, or none to end them all.</summary>
public sealed record class RevokeAllRequest(string? Except = null);

/// <summary>A session as the API shows it. <see cref="Token"/> is present only right after create and rotate.</summary>
public sealed record class SessionResponse(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Token,
    string SessionId,
    string UserId,
    string? Role,
    DateTimeOffset CreatedAt,
    DateTimeOffset LastAccessedAt,
    DateTimeOffset ExpiresAt,
    DateTimeOffset AbsoluteExpiresAt,
    double IdleTimeoutSeconds,
    long Version,
    ImmutableDictionary<string, string> Metadata,
    ClientResponse? CreatedFrom,
    ClientResponse? LastSeenFrom,
    IReadOnlyList<string> Signals,
    int IpChanges,
    int UserAgentChanges)
{
    internal static SessionResponse From(SessionInfo s, string? token = null) => new(
        token, s.SessionId, s.UserId, s.Role, s.CreatedAt, s.LastAccessedAt, s.ExpiresAt, s.AbsoluteExpiresAt,
        s.IdleTimeout.TotalSeconds, s.Version, s.Metadata, ClientResponse.From(s.CreatedFrom), ClientResponse.From(s.LastSeenFrom),
        SignalNames(s.Signals), s.IpChanges, s.UserAgentChanges);

    // camelCase names of the raised signals, e.g. ["ipChanged"]; empty when nothing was noticed.
    internal static string[] SignalNames(SessionSignals signals) =>
        signals == SessionSignals.None
            ? []
            : Enum.GetValues<SessionSignals>()
                .Where(flag => flag != SessionSignals.None && signals.HasFlag(flag))
                .Select(flag => JsonNamingPolicy.CamelCase.ConvertName(flag.ToString()))
                .ToArray();
}

/// <summary>One entry of <c>GET /users/{userId}/sessions</c>.</summary>
public sealed record class SessionSummaryResponse(
    string SessionId,
    string? Role,
    DateTimeOffset CreatedAt,
    DateTimeOffset LastAccessedAt,
    DateTimeOffset ExpiresAt,
    ClientResponse? CreatedFrom,
    ClientResponse? LastSeenFrom)
{
    internal static SessionSummaryResponse From(SessionSummary s) => new(
        s.SessionId, s.Role, s.CreatedAt, s.LastAccessedAt, s.ExpiresAt, ClientResponse.From(s.CreatedFrom), ClientResponse.From(s.LastSeenFrom));
}

/// <summary>A page of a user's sessions; <see cref="Next"/> is the cursor of the next page, absent on the last.</summary>
public sealed record class SessionListResponse(
    IReadOnlyList<SessionSummaryResponse> Sessions,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Next);

/// <summary>Answer of "sign out everywhere".</summary>
public sealed record class EndedResponse(int Ended);

/// <summary>
/// Body of <c>POST /sessions/current/rotate</c>, optional: how long the old token keeps answering (for requests
/// already on their way), up to <c>SessionStore:MaxRotationGracePeriod</c>. None: it stops at once.
/// </summary>
public sealed record class RotateRequest([property: Range(0d, CreateSessionRequest.MaxSeconds)] double? GraceSeconds = null);

/// <summary>Answer of <c>GET /users/{userId}/sessions/count</c>.</summary>
public sealed record class CountResponse(int Count);

/// <summary>Answer of <c>GET /stats</c>.</summary>
public sealed record class StatsResponse(long ActiveSessions);

/// <summary>Answer of <c>GET /cluster/silos</c>: the silos in the membership table, the active ones first.</summary>
public sealed record class ClusterSilosResponse(IReadOnlyList<SiloResponse> Silos)
{
    /// <summary>How long a dead silo stays in the answer after it was declared dead (Orleans keeps its row for days).</summary>
    internal static readonly TimeSpan RecentDeath = TimeSpan.FromHours(1);

    internal static ClusterSilosResponse From(IEnumerable<MembershipEntry> entries, SiloAddress local, DateTimeOffset now) => new(
        entries
            .Where(e => e.Status != SiloStatus.Dead || now - LastUpdate(e) <= RecentDeath)
            .OrderBy(e => e.Status == SiloStatus.Dead)
            .ThenBy(e => e.StartTime)
            .Select(e => SiloResponse.From(e, local))
            .ToList());

    // When a dead silo was last heard of: its last "I am alive", or the vote that declared it dead.
    private static DateTimeOffset LastUpdate(MembershipEntry e) =>
        Utc((e.SuspectTimes ?? []).Select(vote => vote.Item2).Append(e.IAmAliveTime).Max());

    // Orleans writes its membership times from DateTime.UtcNow; a table may hand them back without the kind.
    internal static DateTimeOffset Utc(DateTime time) => new(DateTime.SpecifyKind(time, DateTimeKind.Utc));
}

/// <summary>
/// One silo of <c>GET /cluster/silos</c>. <see cref="Status"/> is Orleans' membership status in camelCase
/// (<c>joining</c>, <c>active</c>, <c>shuttingDown</c>, <c>stopping</c>, <c>dead</c>); <see cref="Generation"/> tells
/// a restarted silo on the same address from its earlier run.
/// </summary>
public sealed record class SiloResponse(
    string Address,
    int Generation,
    string Name,
    string Host,
    string Status,
    int GatewayPort,
    DateTimeOffset StartedAt,
    DateTimeOffset LastAliveAt,
    bool IsThisSilo)
{
    internal static SiloResponse From(MembershipEntry e, SiloAddress local) => new(
        e.SiloAddress.Endpoint.ToString(), e.SiloAddress.Generation, e.SiloName ?? "", e.HostName ?? "",
        JsonNamingPolicy.CamelCase.ConvertName(e.Status.ToString()), e.ProxyPort,
        ClusterSilosResponse.Utc(e.StartTime), ClusterSilosResponse.Utc(e.IAmAliveTime), e.SiloAddress.Equals(local));
}

/// <summary>
/// The <c>data</c> of one <c>GET /events</c> event: <see cref="Kind"/> and <see cref="Reason"/> in camelCase as the
/// event log spells them (<c>created</c>, <c>rotated</c>, <c>ended</c>, <c>signal</c>; <c>deleted</c>, <c>revokedAll</c>, ...).
/// Sessions by public id only: an event never carries a token.
/// </summary>
public sealed record class SessionEventResponse(
    string Kind,
    string UserId,
    string SessionId,
    DateTimeOffset At,
    string? PreviousSessionId,
    string? Reason,
    IReadOnlyList<string> Signals)
{
    internal static SessionEventResponse From(SessionEvent e) => new(
        RedisSessionEvents.Name(e.Kind), e.UserId, e.SessionId, e.At, e.PreviousSessionId,
        e.EndReason is { } reason ? RedisSessionEvents.Name(reason) : null, SessionResponse.SignalNames(e.Signals));
}
