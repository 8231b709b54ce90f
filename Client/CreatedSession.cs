namespace SessionGrains;

/// <summary>A new session: the token (hand it to the client, never store or log it) and the session.</summary>
public sealed record class CreatedSession(SessionToken Token, SessionInfo Session);
