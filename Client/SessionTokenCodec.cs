using System.Buffers.Text;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.ObjectPool;
using Microsoft.Extensions.Options;

namespace SessionGrains;

/// <summary>A server key that signs tokens. The id travels in the token so keys can be rotated.</summary>
public sealed class SessionTokenKey
{
    /// <summary>Shortest secret accepted, in bytes.</summary>
    public const int MinSecretBytes = 32;

    /// <summary>Creates a key.</summary>
    /// <param name="id">1–16 characters from <c>[A-Za-z0-9-]</c>; not secret.</param>
    /// <param name="secret">At least 32 bytes from a CSPRNG.</param>
    public SessionTokenKey(string id, byte[] secret)
    {
        ArgumentNullException.ThrowIfNull(secret);
        if (!IsValidId(id))
        {
            throw new ArgumentException("A token key id is 1 to 16 characters from A-Z, a-z, 0-9 and '-'.", nameof(id));
        }

        if (secret.Length < MinSecretBytes)
        {
            throw new ArgumentException($"A token key secret must be at least {MinSecretBytes} bytes.", nameof(secret));
        }

        Id = id;
        _macs = new DefaultObjectPool<IncrementalHash>(new MacPolicy(secret));
    }

    /// <summary>The key id written into tokens.</summary>
    public string Id { get; }

    // HMACSHA256.HashData sets the key up on every call: about 1.8 µs, and under a frontend's concurrency the
    // largest single cost of validating a token (a third of the client's CPU in a profile). A keyed
    // IncrementalHash reused from a pool skips that: about 0.8 µs (measured on the benchmark machine).
    private readonly ObjectPool<IncrementalHash> _macs;

    /// <summary>A new key with a random secret.</summary>
    public static SessionTokenKey Generate(string id) => new(id, RandomNumberGenerator.GetBytes(MinSecretBytes));

    /// <summary>Shows the id only.</summary>
    public override string ToString() => $"SessionTokenKey({Id})";

    internal static bool IsValidId([NotNullWhen(true)] string? id) =>
        id is { Length: >= 1 and <= 16 } && id.All(c => char.IsAsciiLetterOrDigit(c) || c == '-');

    /// <summary>HMAC-SHA256 of <paramref name="input"/> under this key into <paramref name="mac"/> (32 bytes).</summary>
    internal void Mac(ReadOnlySpan<byte> input, Span<byte> mac)
    {
        var hmac = _macs.Get();
        hmac.AppendData(input);
        hmac.GetHashAndReset(mac);

        // Returned only after a complete hash: one that threw mid-way is dropped, never reused half-fed.
        _macs.Return(hmac);
    }

    private sealed class MacPolicy(byte[] secret) : PooledObjectPolicy<IncrementalHash>
    {
        public override IncrementalHash Create() => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, secret);

        public override bool Return(IncrementalHash obj) => true;
    }
}

/// <summary>
/// Makes and checks session tokens: <c>sg1_{keyId}_{base64url(random[32] ‖ mac[16])}</c>, where the MAC is
/// HMAC-SHA256 under the named key over the prefix, key id and random bits. A token with a bad shape, an
/// unknown key or a wrong MAC is refused here, before any grain call, activation or storage read. New tokens
/// use the first (newest) key; tokens under the other configured keys keep working until their key is removed.
/// </summary>
public sealed class SessionTokenCodec
{
    private const int RandomBytes = 32;
    private const int MacBytes = 16;
    private const int EncodedBodyLength = 64; // base64url of 48 bytes
    private const int MaxLength = 4 + 16 + 1 + EncodedBodyLength;

    private readonly SessionTokenKey _current;
    private readonly Dictionary<string, SessionTokenKey> _keys;

    /// <summary>Creates a codec; <paramref name="keys"/> are newest first and need distinct ids.</summary>
    public SessionTokenCodec(IReadOnlyList<SessionTokenKey> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (keys.Count == 0)
        {
            throw new ArgumentException("At least one token key is needed.", nameof(keys));
        }

        _current = keys[0];
        _keys = new Dictionary<string, SessionTokenKey>(StringComparer.Ordinal);
        foreach (var key in keys)
        {
            if (!_keys.TryAdd(key.Id, key))
            {
                throw new ArgumentException($"The token key id '{key.Id}' is configured twice.", nameof(keys));
            }
        }
    }

    /// <summary>The id of the key new tokens are signed with.</summary>
    public string CurrentKeyId => _current.Id;

    /// <summary>A codec with a key generated for this process: tokens die with it. For tests and the embedded default.</summary>
    public static SessionTokenCodec Ephemeral() => new([SessionTokenKey.Generate("local")]);

    /// <summary>Creates a new token from the operating system's CSPRNG, signed with the newest key.</summary>
    public SessionToken Create()
    {
        Span<byte> body = stackalloc byte[RandomBytes + MacBytes];
        RandomNumberGenerator.Fill(body[..RandomBytes]);
        var header = Prefix(_current.Id);
        Sign(_current, header, body[..RandomBytes], body[RandomBytes..]);
        return new SessionToken(header + Base64Url.EncodeToString(body), DeriveSessionId(body[..RandomBytes]));
    }

    /// <summary>
    /// Checks a token string without touching any grain or storage. False for anything that is not a token
    /// this codec's keys made: empty, oversized, wrong prefix, non-base64url, NUL bytes, unknown key id,
    /// wrong MAC, or a session id passed where a token belongs.
    /// </summary>
    public bool TryParse([NotNullWhen(true)] string? value, out SessionToken token)
    {
        token = default;
        if (value is null || value.Length > MaxLength || !value.StartsWith(SessionToken.Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        var separator = value.IndexOf('_', SessionToken.Prefix.Length);
        if (separator < 0 || value.Length - separator - 1 != EncodedBodyLength)
        {
            return false;
        }

        var keyId = value[SessionToken.Prefix.Length..separator];
        if (!_keys.TryGetValue(keyId, out var key))
        {
            return false;
        }

        Span<byte> body = stackalloc byte[RandomBytes + MacBytes];
        var encoded = value.AsSpan(separator + 1);
        if (Base64Url.DecodeFromChars(encoded, body, out var consumed, out var written) != System.Buffers.OperationStatus.Done
            || consumed != EncodedBodyLength || written != body.Length)
        {
            return false;
        }

        Span<byte> expectedMac = stackalloc byte[MacBytes];
        Sign(key, value[..(separator + 1)], body[..RandomBytes], expectedMac);
        if (!CryptographicOperations.FixedTimeEquals(expectedMac, body[RandomBytes..]))
        {
            return false;
        }

        token = new SessionToken(value, DeriveSessionId(body[..RandomBytes]));
        return true;
    }

    /// <summary>
    /// Reads keys from configuration: <c>id:secret</c> pairs separated by commas, newest first, each secret
    /// base64 or base64url of at least 32 bytes (e.g. <c>openssl rand -base64 32</c>). Errors name
    /// <paramref name="settingName"/> and never repeat a secret.
    /// </summary>
    public static IReadOnlyList<SessionTokenKey> ParseKeys(string configuration, string settingName)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var keys = new List<SessionTokenKey>();
        foreach (var entry in configuration.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = entry.IndexOf(':', StringComparison.Ordinal);
            var id = colon > 0 ? entry[..colon] : null;
            var secret = colon > 0 ? DecodeSecret(entry[(colon + 1)..]) : null;
            if (!SessionTokenKey.IsValidId(id) || secret is not { Length: >= SessionTokenKey.MinSecretBytes })
            {
                throw new OptionsValidationException(settingName, typeof(SessionTokenKey),
                    [$"{settingName} entry {keys.Count + 1} is not 'id:secret' with an id of 1-16 characters [A-Za-z0-9-] and a base64 secret of at least {SessionTokenKey.MinSecretBytes} bytes."]);
            }

            keys.Add(new SessionTokenKey(id, secret));
        }

        if (keys.Count == 0 || keys.Select(k => k.Id).Distinct(StringComparer.Ordinal).Count() != keys.Count)
        {
            throw new OptionsValidationException(settingName, typeof(SessionTokenKey),
                [$"{settingName} must name at least one key, each id once."]);
        }

        return keys;
    }

    private static byte[]? DecodeSecret(string text)
    {
        try
        {
            return Base64Url.DecodeFromChars(text.TrimEnd('=').Replace('+', '-').Replace('/', '_'));
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static string Prefix(string keyId) => SessionToken.Prefix + keyId + "_";

    private static void Sign(SessionTokenKey key, string header, ReadOnlySpan<byte> random, Span<byte> mac)
    {
        Span<byte> input = stackalloc byte[Encoding.ASCII.GetByteCount(header) + random.Length];
        var headerBytes = Encoding.ASCII.GetBytes(header, input);
        random.CopyTo(input[headerBytes..]);
        Span<byte> full = stackalloc byte[HMACSHA256.HashSizeInBytes];
        key.Mac(input, full);
        full[..MacBytes].CopyTo(mac);
    }

    private static string DeriveSessionId(ReadOnlySpan<byte> random)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(random, hash);
        return Base64Url.EncodeToString(hash);
    }
}
