using System.Text;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.StackExchangeRedis;

namespace SessionGrains.Benchmarks;

/// <summary>
/// What an ASP.NET Core user has today: <c>services.AddStackExchangeRedisCache</c> with a sliding expiration,
/// as <c>AddSession</c> uses it. It has no user index, so list, delete-all and count do not apply.
/// </summary>
internal sealed class RedisCacheTarget(string configuration) : ISessionTarget
{
    private static readonly DistributedCacheEntryOptions Sliding = new() { SlidingExpiration = TimeSpan.FromMinutes(30) };

    private readonly RedisCache _cache = new(new RedisCacheOptions { ConfigurationOptions = RedisProcess.PeerOptions(configuration), InstanceName = "aspnet:" });

    public string Name => "ASP.NET Core RedisCache (sliding)";

    public bool Supports(Workload workload) => workload.IsValidation || workload == Workload.Mix || workload == Workload.Create;

    public async Task<string> CreateAsync(string userId)
    {
        var key = Guid.NewGuid().ToString("N");
        await _cache.SetAsync(key, Encoding.UTF8.GetBytes($"{{\"userId\":\"{userId}\",\"role\":\"member\"}}"), Sliding);
        return key;
    }

    public async Task<bool> ValidateAsync(string handle) => await _cache.GetAsync(handle) is not null;

    public Task UpdateAsync(string handle, int value) =>
        _cache.SetAsync(handle, Encoding.UTF8.GetBytes($"{{\"role\":\"member\",\"n\":{value}}}"), Sliding);

    public Task<int> ListByUserAsync(string userId) => throw new NotSupportedException();

    public Task<int> DeleteAllForUserAsync(string userId) => throw new NotSupportedException();

    public Task<long> CountAsync() => throw new NotSupportedException();

    public Task StoreManyAsync(int count) => throw new NotSupportedException();

    public ValueTask DisposeAsync()
    {
        _cache.Dispose();
        return ValueTask.CompletedTask;
    }
}
