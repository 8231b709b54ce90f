using System.Security.Cryptography;
using Orleans.Storage;
using StackExchange.Redis;

namespace SessionGrains;

/// <summary>
/// SessionGrains' Redis grain storage (layout: docs/storage.md). Orleans' Redis provider wrote every record through
/// a Lua script into a hash of etag and JSON, with the TTL a second command: a create cost Redis 20 µs of CPU, a
/// session 1.2 kB of its memory, and a user index was rewritten whole on every change. Here a record is one string
/// (an 8-byte etag, then the value: <see cref="CompactStateCodec"/> for sessions, JSON for the rest) and a new one is
/// a plain <c>SET NX PX</c>; a user index is a hash with one field per session (<c>RedisStateStorage.UserIndex.cs</c>),
/// so a change writes only the entries it changed. Every record whose state can expire carries the key TTL
/// backstop (<see cref="IExpiringState"/> + <see cref="SessionGrainsOptions.StorageExpiryMargin"/>), set in the same
/// command as the write. Writes stay etag-checked: a second activation's write fails with
/// <see cref="InconsistentStateException"/>. Records of the legacy format are read through Orleans' provider and
/// rewritten in this one on their next change (<see cref="RedisStorageFormat"/>).
/// </summary>
internal sealed partial class RedisStateStorage(
    string serviceId,
    IGrainStorage legacy,
    RedisConnection connection,
    SessionGrainsOptions options) : IGrainStorage
{
    /// <summary>Bytes of the etag at the start of every value.</summary>
    internal const int EtagLength = 8;

    /// <summary>What a legacy record's etag is given, so a write knows which format the record is in.</summary>
    private const string LegacyEtagPrefix = "orleans:";

    // ARGV: expected etag, new value, TTL in milliseconds ("0" for none). 1 when written.
    private const string CompareAndSetScript =
        """
        if redis.call('GETRANGE', KEYS[1], 0, 7) ~= ARGV[1] then return 0 end
        if ARGV[3] == '0' then redis.call('SET', KEYS[1], ARGV[2]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
        return 1
        """;

    // ARGV: expected etag. 1 when deleted.
    private const string CompareAndDeleteScript =
        """
        if redis.call('GETRANGE', KEYS[1], 0, 7) ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1])
        return 1
        """;

    private static readonly Dictionary<string, string> TypeCodes = new(StringComparer.Ordinal)
    {
        [GrainTypeNames.Session] = "s",
        [GrainTypeNames.UserSessions] = "u",
        [SiloGrainTypeNames.ExpiryBucket] = "b",
        [SiloGrainTypeNames.ExpiryBucketPage] = "p",
        [SiloGrainTypeNames.SessionCounter] = "c",
        [SiloGrainTypeNames.CacheEntry] = "e",
    };

    private static readonly StorageJsonSerializer Json = new();

    /// <summary>The Redis key of a grain's record: <c>{serviceId}/{type code}/{key}</c>.</summary>
    internal static RedisKey KeyOf(string serviceId, GrainId grainId)
    {
        var type = grainId.Type.ToString()!;
        return $"{serviceId}/{TypeCodes.GetValueOrDefault(type, type)}/{grainId.Key}";
    }

    /// <summary>The key Orleans' Redis provider stored a grain's record under (the legacy format).</summary>
    internal static RedisKey LegacyKeyOf(string serviceId, GrainId grainId) => $"{serviceId}/state/{grainId}";

    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var database = await connection.GetDatabaseAsync().ConfigureAwait(false);
        if (grainState is IGrainState<UserSessionsState> index
            ? await ReadIndexAsync(database, grainId, index).ConfigureAwait(false)
            : await ReadStringAsync(database, grainId, grainState).ConfigureAwait(false))
        {
            grainState.RecordExists = true;
            return;
        }

        await legacy.ReadStateAsync(stateName, grainId, grainState).ConfigureAwait(false);
        if (grainState.ETag is not null)
        {
            grainState.ETag = LegacyEtagPrefix + grainState.ETag;
        }
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var inLegacyFormat = IsLegacy(grainState.ETag);
        if (options.RedisStorageFormat == RedisStorageFormat.Legacy && (inLegacyFormat || grainState.ETag is null))
        {
            await WriteLegacyAsync(stateName, grainId, grainState).ConfigureAwait(false);
            return;
        }

        // A record still in the legacy format is created anew in this one, then its legacy key deleted. Two
        // commands, not one script: in Redis cluster mode the two keys may live on different nodes.
        var expectedEtag = inLegacyFormat ? null : grainState.ETag;
        var database = await connection.GetDatabaseAsync().ConfigureAwait(false);
        var etag = RandomNumberGenerator.GetBytes(EtagLength);
        var written = grainState is IGrainState<UserSessionsState> index
            ? await WriteIndexAsync(database, grainId, index, expectedEtag, etag).ConfigureAwait(false)
            : await WriteStringAsync(database, grainId, grainState.State, expectedEtag, etag).ConfigureAwait(false);
        if (!written)
        {
            throw Conflict(grainId, grainState.ETag);
        }

        if (inLegacyFormat)
        {
            await database.KeyDeleteAsync(LegacyKeyOf(serviceId, grainId)).ConfigureAwait(false);
        }

        grainState.ETag = Convert.ToHexString(etag);
        grainState.RecordExists = true;
    }

    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        if (IsLegacy(grainState.ETag))
        {
            var legacyState = new GrainState<T>(grainState.State) { ETag = grainState.ETag![LegacyEtagPrefix.Length..], RecordExists = grainState.RecordExists };
            await legacy.ClearStateAsync(stateName, grainId, legacyState).ConfigureAwait(false);
        }
        else if (grainState.ETag is not null)
        {
            var database = await connection.GetDatabaseAsync().ConfigureAwait(false);
            if (grainState is IGrainState<SessionState>)
            {
                // Ending a session is final, whatever another activation wrote since: a plain DEL, no script. A
                // later write of that other activation fails its compare, as the key is gone.
                await database.KeyDeleteAsync(KeyOf(serviceId, grainId)).ConfigureAwait(false);
            }
            else
            {
                var deleted = grainState is IGrainState<UserSessionsState> index
                    ? await DeleteIndexAsync(database, grainId, index.State!, grainState.ETag).ConfigureAwait(false)
                    : (int)await database.ScriptEvaluateAsync(CompareAndDeleteScript, [KeyOf(serviceId, grainId)], [Convert.FromHexString(grainState.ETag)]).ConfigureAwait(false) == 1;
                if (!deleted)
                {
                    throw Conflict(grainId, grainState.ETag);
                }
            }
        }

        grainState.ETag = null;
        grainState.RecordExists = false;
        grainState.State = Activator.CreateInstance<T>();
    }

    /// <summary>Reads a string record; false when there is none.</summary>
    private async Task<bool> ReadStringAsync<T>(IDatabase database, GrainId grainId, IGrainState<T> grainState)
    {
        using var stored = await database.StringGetLeaseAsync(KeyOf(serviceId, grainId)).ConfigureAwait(false);
        if (stored is not { Length: > EtagLength })
        {
            return false;
        }

        (grainState.ETag, grainState.State) = Parse<T>(stored.Span, grainId);
        return true;
    }

    /// <summary>Writes a string record: with no etag expected, only if there is none (no script); else compare-and-set.</summary>
    private async Task<bool> WriteStringAsync<T>(IDatabase database, GrainId grainId, T state, string? expectedEtag, byte[] etag)
    {
        var key = KeyOf(serviceId, grainId);
        var value = Value(etag, state, grainId);
        var ttl = TimeToLive(state);
        if (expectedEtag is null)
        {
            return await database.StringSetAsync(key, value, ttl, When.NotExists).ConfigureAwait(false);
        }

        var result = await database.ScriptEvaluateAsync(CompareAndSetScript, [key], [Convert.FromHexString(expectedEtag), value, Milliseconds(ttl)]).ConfigureAwait(false);
        return (int)result == 1;
    }

    /// <summary>A write in the legacy format (<see cref="RedisStorageFormat.Legacy"/>), with the TTL backstop as a second command, as before.</summary>
    private async Task WriteLegacyAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var legacyState = new GrainState<T>(grainState.State) { ETag = grainState.ETag?[LegacyEtagPrefix.Length..], RecordExists = grainState.RecordExists };
        await legacy.WriteStateAsync(stateName, grainId, legacyState).ConfigureAwait(false);
        grainState.ETag = LegacyEtagPrefix + legacyState.ETag;
        grainState.RecordExists = true;
        if (TimeToLive(grainState.State) is { } ttl)
        {
            var database = await connection.GetDatabaseAsync().ConfigureAwait(false);
            await database.KeyExpireAsync(LegacyKeyOf(serviceId, grainId), ttl, flags: CommandFlags.FireAndForget).ConfigureAwait(false);
        }
    }

    private static bool IsLegacy(string? etag) => etag?.StartsWith(LegacyEtagPrefix, StringComparison.Ordinal) == true;

    /// <summary>The key TTL: the state's discard time plus the margin, at least a second; null when the state never expires.</summary>
    private TimeSpan? TimeToLive<T>(T state) => TimeToLive((state as IExpiringState)?.DiscardableAfter);

    private TimeSpan? TimeToLive(DateTimeOffset? discardableAfter)
    {
        if (discardableAfter is not { } after)
        {
            return null;
        }

        var ttl = after + options.StorageExpiryMargin - options.TimeProvider.GetUtcNow();
        return ttl > TimeSpan.FromSeconds(1) ? ttl : TimeSpan.FromSeconds(1);
    }

    private static long Milliseconds(TimeSpan? ttl) => ttl is { } t ? (long)Math.Ceiling(t.TotalMilliseconds) : 0;

    /// <summary>A stored string value: the etag, then the state (compact for sessions, JSON otherwise).</summary>
    internal static byte[] Value<T>(byte[] etag, T state, GrainId grainId)
    {
        var body = state is SessionState session
            ? CompactStateCodec.EncodeSession(session, grainId.Key.ToString()!)
            : Json.Serialize(state).ToArray();
        return [.. etag, .. body];
    }

    /// <summary>The etag (hex) and state of a stored string value.</summary>
    internal static (string Etag, T State) Parse<T>(ReadOnlySpan<byte> value, GrainId grainId)
    {
        var body = value[EtagLength..];
        var state = typeof(T) == typeof(SessionState)
            ? (T)(object)CompactStateCodec.DecodeSession(body, grainId.Key.ToString()!)
            : Json.Deserialize<T>(new BinaryData(body.ToArray()));
        return (Convert.ToHexString(value[..EtagLength]), state);
    }

    private static InconsistentStateException Conflict(GrainId grainId, string? etag) =>
        new($"Another write changed the stored record of {grainId} first (etag {etag ?? "none"}).");
}
