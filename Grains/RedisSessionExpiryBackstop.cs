using StackExchange.Redis;

namespace SessionGrains;

/// <summary>
/// Gives every stored entry whose state can expire (<see cref="IExpiringState"/>) a Redis key TTL at that
/// time plus <see cref="SessionGrainsOptions.StorageExpiryMargin"/>. No session data outlives its lifetime,
/// even when no silo runs to clean it up. (Orleans' own <c>EntryExpiry</c> is one fixed TTL meant for tests;
/// this one follows each session's absolute expiry.)
/// </summary>
internal sealed class RedisSessionExpiryBackstop(
    Func<GrainId, RedisKey> keyOf,
    RedisConnection connection,
    SessionGrainsOptions options)
{
    public async Task ApplyAsync(GrainId grainId, IExpiringState state)
    {
        if (state.DiscardableAfter is not { } discardableAfter)
        {
            return;
        }

        var ttl = discardableAfter + options.StorageExpiryMargin - options.TimeProvider.GetUtcNow();
        var database = await connection.GetDatabaseAsync().ConfigureAwait(false);
        // Sent without waiting for the reply: the write it follows is already acknowledged, the TTL is a
        // backstop, and a create or touch should not pay a second round trip for it.
        await database.KeyExpireAsync(keyOf(grainId), ttl > TimeSpan.Zero ? ttl : TimeSpan.FromSeconds(1), flags: CommandFlags.FireAndForget).ConfigureAwait(false);
    }
}
