using System.Buffers.Text;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace SessionGrains;

/// <summary>
/// The secret a browser holds: <c>sg1_</c> followed by 256 random bits in base64url (47 characters).
/// Only the public <see cref="SessionId"/> derived from it (SHA-256, base64url) ever reaches a grain,
/// a storage key or a log line.
/// </summary>
public readonly struct SessionToken : IEquatable<SessionToken>
{
    /// <summary>The version prefix every token of this format starts with.</summary>
    public const string Prefix = "sg1_";

    private const int RandomBytes = 32;

    /// <summary>Length of a token string: prefix plus 43 base64url characters.</summary>
    public const int Length = 4 + 43;

    private readonly string? _value;

    private SessionToken(string value, string sessionId)
    {
        _value = value;
        SessionId = sessionId;
    }

    /// <summary>The token string to hand to the client (cookie, header). Never log or store it.</summary>
    public string Value => _value ?? throw new InvalidOperationException("Default SessionToken has no value.");

    /// <summary>The public id of the session: SHA-256 of the token's random bytes, base64url (43 characters).</summary>
    public string SessionId { get; }

    /// <summary>Creates a new token from the operating system's CSPRNG.</summary>
    public static SessionToken Create()
    {
        Span<byte> random = stackalloc byte[RandomBytes];
        RandomNumberGenerator.Fill(random);
        var token = Prefix + Base64Url.EncodeToString(random);
        return new SessionToken(token, DeriveSessionId(random));
    }

    /// <summary>
    /// Parses a token string without touching any grain or storage. Returns false for anything that is not
    /// exactly a token of this format: empty, oversized, wrong prefix, non-base64url, NUL bytes, or a
    /// session id passed where a token belongs.
    /// </summary>
    public static bool TryParse([NotNullWhen(true)] string? value, out SessionToken token)
    {
        token = default;
        if (value is null || value.Length != Length || !value.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        Span<byte> random = stackalloc byte[RandomBytes];
        var encoded = value.AsSpan(Prefix.Length);
        if (Base64Url.DecodeFromChars(encoded, random, out var consumed, out var written) != System.Buffers.OperationStatus.Done
            || consumed != encoded.Length || written != RandomBytes)
        {
            return false;
        }

        // Base64url has several encodings of the same bytes (trailing bits); accept only the canonical one
        // so one session has exactly one token string.
        Span<char> canonical = stackalloc char[encoded.Length];
        Base64Url.EncodeToChars(random, canonical);
        if (!canonical.SequenceEqual(encoded))
        {
            return false;
        }

        token = new SessionToken(value, DeriveSessionId(random));
        return true;
    }

    /// <summary>True when <paramref name="value"/> has the shape of a public session id (43 base64url characters).</summary>
    public static bool IsWellFormedSessionId([NotNullWhen(true)] string? value) =>
        value is { Length: 43 } && Base64Url.IsValid(value, out var decodedLength) && decodedLength == 32;

    private static string DeriveSessionId(ReadOnlySpan<byte> random)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(random, hash);
        return Base64Url.EncodeToString(hash);
    }

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
