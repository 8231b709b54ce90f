using System.Text;
using StackExchange.Redis;

namespace SessionGrains.Tests;

/// <summary>
/// Reads and writes records in Redis the way <see cref="RedisStateStorage"/> lays them out, for tests that look at
/// what is stored or play another activation writing first.
/// </summary>
public static class StoredRecords
{
    /// <summary>An etag no silo wrote: the record as another activation would leave it.</summary>
    private static readonly byte[] ForeignEtag = "foreign!"u8.ToArray();

    /// <summary>The stored state of a grain, or null when there is none.</summary>
    internal static async Task<T?> ReadAsync<T>(IDatabase database, string serviceId, GrainId grainId) where T : class
    {
        var value = (byte[]?)await database.StringGetAsync(RedisStateStorage.KeyOf(serviceId, grainId));
        return value is null ? null : RedisStateStorage.Parse<T>(value, grainId).State;
    }

    /// <summary>Stores <paramref name="state"/> for a grain under an etag no silo holds.</summary>
    internal static Task WriteAsync<T>(IDatabase database, string serviceId, GrainId grainId, T state) =>
        database.StringSetAsync(RedisStateStorage.KeyOf(serviceId, grainId), RedisStateStorage.Value(ForeignEtag, state, grainId), expiry: null, keepTtl: true);

    /// <summary>The JSON of a record stored as JSON (expiry buckets, their pages, cache entries), or null.</summary>
    public static async Task<string?> JsonAsync(IDatabase database, RedisKey key)
    {
        var value = (byte[]?)await database.StringGetAsync(key);
        return value is null ? null : Encoding.UTF8.GetString(value.AsSpan(RedisStateStorage.EtagLength));
    }

    /// <summary>Stores <paramref name="json"/> as a JSON record under an etag no silo holds.</summary>
    public static Task WriteJsonAsync(IDatabase database, RedisKey key, string json) =>
        database.StringSetAsync(key, (byte[])[.. ForeignEtag, .. Encoding.UTF8.GetBytes(json)], expiry: null, keepTtl: true);
}
