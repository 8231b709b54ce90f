using Orleans.Storage;
using StackExchange.Redis;

namespace SessionGrains;

/// <summary>
/// Wraps the Orleans Redis grain storage and gives every stored entry whose state can expire
/// (<see cref="IExpiringState"/>) a Redis key TTL at that time plus a margin. No session data outlives
/// its lifetime, even when no silo runs to clean it up. (Orleans' own <c>EntryExpiry</c> is a fixed TTL
/// meant for tests; this one follows each session's absolute expiry.)
/// </summary>
internal sealed class RedisSessionExpiryBackstop(
    IGrainStorage inner,
    Func<GrainId, RedisKey> keyOf,
    RedisConnection connection,
    SessionGrainsOptions options) : IGrainStorage
{
    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        inner.ReadStateAsync(stateName, grainId, grainState);

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        await inner.WriteStateAsync(stateName, grainId, grainState).ConfigureAwait(false);
        if (grainState.State is IExpiringState { DiscardableAfter: { } discardableAfter })
        {
            var ttl = discardableAfter + options.StorageExpiryMargin - options.TimeProvider.GetUtcNow();
            var database = await connection.GetDatabaseAsync().ConfigureAwait(false);
            await database.KeyExpireAsync(keyOf(grainId), ttl > TimeSpan.Zero ? ttl : TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        }
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        inner.ClearStateAsync(stateName, grainId, grainState);
}
