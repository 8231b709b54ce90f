using System.Text.Json;
using StackExchange.Redis;

namespace SessionGrains.Benchmarks;

/// <summary>
/// The seed chapter's <c>RedisSessionStore</c> (TypeScript on ioredis), ported faithfully to C# on
/// StackExchange.Redis: the same keys (<c>sess:{id}</c>, <c>user_sess:{userId}</c>), the same commands in the
/// same order and round trips, JSON values. <see cref="Sliding"/> adds the <c>EXPIRE</c> on read that
/// express-session's <c>touch</c> does.
/// </summary>
internal sealed class SeedRedisStore(IDatabase redis, bool sliding) : ISessionTarget
{
    private const string Prefix = "sess:";
    private const string UserPrefix = "user_sess:";
    private static readonly TimeSpan Ttl = TimeSpan.FromMinutes(30);

    public string Name => sliding ? "seed design, sliding (GET+EXPIRE)" : "seed design (GET)";

    public bool Sliding => sliding;

    public bool Supports(Workload workload) => sliding ? workload.IsValidation : !workload.ForFrontends;

    // set(sessionId, data, ttl): pipeline SETEX + SADD + EXPIRE
    public async Task SetAsync(string sessionId, SessionData data)
    {
        var batch = redis.CreateBatch();
        var setex = batch.StringSetAsync(Prefix + sessionId, JsonSerializer.Serialize(data), Ttl);
        var sadd = batch.SetAddAsync(UserPrefix + data.UserId, sessionId);
        var expire = batch.KeyExpireAsync(UserPrefix + data.UserId, Ttl);
        batch.Execute();
        await Task.WhenAll(setex, sadd, expire);
    }

    // get(sessionId): GET + JSON.parse
    public async Task<SessionData?> GetAsync(string sessionId)
    {
        var value = await redis.StringGetAsync(Prefix + sessionId);
        return value.IsNull ? null : JsonSerializer.Deserialize<SessionData>((string)value!);
    }

    // delete(sessionId): GET, then a pipeline of DEL and SREM
    public async Task DeleteAsync(string sessionId)
    {
        var data = await GetAsync(sessionId);
        var batch = redis.CreateBatch();
        var deletes = new List<Task> { batch.KeyDeleteAsync(Prefix + sessionId) };
        if (data is not null)
        {
            deletes.Add(batch.SetRemoveAsync(UserPrefix + data.UserId, sessionId));
        }

        batch.Execute();
        await Task.WhenAll(deletes);
    }

    // findByUserId(userId): SMEMBERS, then one GET per id, one after the other (N+1)
    public async Task<List<SessionData>> FindByUserIdAsync(string userId)
    {
        var ids = await redis.SetMembersAsync(UserPrefix + userId);
        var sessions = new List<SessionData>();
        foreach (var id in ids)
        {
            if (await GetAsync(id!) is { } data)
            {
                sessions.Add(data);
            }
            else
            {
                await redis.SetRemoveAsync(UserPrefix + userId, id);
            }
        }

        return sessions;
    }

    // deleteAllForUser(userId): SMEMBERS, then a pipeline of DEL per session and DEL of the set
    public async Task<int> DeleteAllForUserCoreAsync(string userId)
    {
        var ids = await redis.SetMembersAsync(UserPrefix + userId);
        var batch = redis.CreateBatch();
        var deletes = ids.Select(id => batch.KeyDeleteAsync(Prefix + id)).Append(batch.KeyDeleteAsync(UserPrefix + userId)).ToList();
        batch.Execute();
        await Task.WhenAll(deletes);
        return ids.Length;
    }

    // count(): KEYS sess:*
    public async Task<long> CountCoreAsync() =>
        ((RedisResult[])(await redis.ExecuteAsync("KEYS", Prefix + "*"))!).Length;

    public async Task<string> CreateAsync(string userId)
    {
        var id = Guid.NewGuid().ToString("N");
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await SetAsync(id, new SessionData(userId, "member", now, now, new Dictionary<string, string>()));
        return id;
    }

    public async Task<bool> ValidateAsync(string handle)
    {
        if (!sliding)
        {
            return await GetAsync(handle) is not null;
        }

        var get = GetAsync(handle);
        var expire = redis.KeyExpireAsync(Prefix + handle, Ttl);
        await Task.WhenAll(get, expire);
        return get.Result is not null;
    }

    public async Task UpdateAsync(string handle, int value)
    {
        var data = await GetAsync(handle) ?? throw new InvalidOperationException("seed session gone");
        data.Metadata["n"] = value.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await SetAsync(handle, data with { LastAccessedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() });
    }

    public async Task<int> ListByUserAsync(string userId) => (await FindByUserIdAsync(userId)).Count;

    public Task<int> DeleteAllForUserAsync(string userId) => DeleteAllForUserCoreAsync(userId);

    public Task<long> CountAsync() => CountCoreAsync();

    public async Task StoreManyAsync(int count)
    {
        for (var start = 0; start < count; start += 1000)
        {
            await Task.WhenAll(Enumerable.Range(start, Math.Min(1000, count - start)).Select(i => CreateAsync($"count-{i / 20}")));
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>The seed's <c>SessionData</c>.</summary>
    internal sealed record class SessionData(string UserId, string Role, long CreatedAt, long LastAccessedAt, Dictionary<string, string> Metadata);
}
