namespace SessionGrains;

/// <summary>
/// The secret a browser holds: <c>sg1_{keyId}_</c> followed by 256 random bits and a 128-bit MAC, in
/// base64url. Only the public <see cref="SessionId"/> derived from the random bits (SHA-256, base64url)
/// ever reaches a grain, a storage key or a log line. Tokens are made and checked by
/// <see cref="SessionTokenCodec"/>.
/// </summary>
public readonly struct SessionToken : IEquatable<SessionToken>
{
    /// <summary>The version prefix every token of this format starts with.</summary>
    public const string Prefix = "sg1_";

    private readonly string? _value;

    internal SessionToken(string value, string sessionId)
    {
        _value = value;
        SessionId = sessionId;
    }

    /// <summary>The token string to hand to the client (cookie, header). Never log or store it.</summary>
    public string Value => _value ?? throw new InvalidOperationException("Default SessionToken has no value.");

    /// <summary>The public id of the session: SHA-256 of the token's random bits, base64url (43 characters).</summary>
    public string SessionId { get; }

    /// <inheritdoc/>
    public bool Equals(SessionToken other) => string.Equals(SessionId, other.SessionId, StringComparison.Ordinal);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is SessionToken other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => SessionId?.GetHashCode(StringComparison.Ordinal) ?? 0;

    /// <summary>Shows the session id prefix only, so a token never reaches a log by accident.</summary>
    public override string ToString() => $"SessionToken({SessionIds.ForLog(SessionId)})";

    /// <summary>Compares by session id.</summary>
    public static bool operator ==(SessionToken left, SessionToken right) => left.Equals(right);

    /// <summary>Compares by session id.</summary>
    public static bool operator !=(SessionToken left, SessionToken right) => !left.Equals(right);
}
