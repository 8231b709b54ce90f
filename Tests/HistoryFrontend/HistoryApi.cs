namespace SessionGrains.HistoryFrontend;

// The wire shapes of the history frontend's routes, compiled into the frontend and into the tests alike.
// Tokens travel only in these bodies, over loopback, between a test and the frontend it started.

/// <summary>A call that names a session by its token.</summary>
public sealed record class TokenRequest(string Token);

/// <summary>An update with the version the writer last saw: sets metadata "n" to <paramref name="Value"/>.</summary>
public sealed record class UpdateRequest(string Token, long? ExpectedVersion, string Value);

/// <summary>A call about one user, optionally naming one of its sessions by public id.</summary>
public sealed record class UserRequest(string UserId, string? SessionId = null);

/// <summary>What a validation, update or rotation saw: nothing, a version, or a version conflict.</summary>
public sealed record class SessionAnswer(bool Found, long Version = 0, string? SessionId = null, bool Conflict = false);

/// <summary>A new token (create, rotate) with the session it opens; Found is false when there was no session to rotate.</summary>
public sealed record class CreatedAnswer(bool Found, string? Token = null, string? SessionId = null, long Version = 0, DateTimeOffset CreatedAt = default);

/// <summary>Whether a delete or revoke ended a session, or how many a delete-all or a count saw.</summary>
public sealed record class CountAnswer(bool Ended, int Count = 0);

/// <summary>The public ids of a user's live sessions, as the user index lists them.</summary>
public sealed record class ListAnswer(IReadOnlyList<string> SessionIds);

/// <summary>The frontend's near cache so far: validations answered from memory, sent to their grain, and sessions recalled by a grain.</summary>
public sealed record class NearCacheCounts(long Hits, long Misses, long Recalls);
