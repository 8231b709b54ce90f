using Microsoft.Extensions.Caching.Distributed;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>The behaviours ASP.NET Core's own Redis cache tests check, against the grain-backed cache, with the fake clock.</summary>
[Collection(RedisClusterCollection.Name)]
public sealed class DistributedCacheTests(RedisClusterFixture fixture)
{
    private SessionCluster Cluster => fixture.Cluster;

    private IDistributedCache Cache => new SessionGrainsDistributedCache(Cluster.Grains, Cluster.Time);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Key() => "cache-" + Guid.NewGuid().ToString("N");

    [Fact]
    public async Task Set_then_get_returns_the_value_sync_and_async()
    {
        var key = Key();
        await Cache.SetAsync(key, [1, 2, 3], new DistributedCacheEntryOptions(), Ct);
        Assert.Equal(new byte[] { 1, 2, 3 }, await Cache.GetAsync(key, Ct));
        Cache.Set(key + "s", [4], new DistributedCacheEntryOptions());
        Assert.Equal(new byte[] { 4 }, Cache.Get(key + "s"));
    }

    [Fact]
    public async Task Keys_are_case_sensitive_a_missing_key_is_null_and_set_overwrites()
    {
        var key = Key();
        await Cache.SetAsync(key, [1], new DistributedCacheEntryOptions(), Ct);
        Assert.Null(await Cache.GetAsync(key.ToUpperInvariant(), Ct));
        Assert.Null(await Cache.GetAsync(Key(), Ct));
        await Cache.SetAsync(key, [2], new DistributedCacheEntryOptions(), Ct);
        Assert.Equal(new byte[] { 2 }, await Cache.GetAsync(key, Ct));
    }

    [Fact]
    public async Task Remove_removes_and_refresh_of_a_missing_key_does_not_throw()
    {
        var key = Key();
        await Cache.SetAsync(key, [1], new DistributedCacheEntryOptions(), Ct);
        await Cache.RemoveAsync(key, Ct);
        Assert.Null(await Cache.GetAsync(key, Ct));
        await Cache.RefreshAsync(Key(), Ct);
        Cache.Remove(Key());
    }

    [Fact]
    public async Task Absolute_and_relative_expirations_end_the_entry_to_the_millisecond()
    {
        var absolute = Key();
        var relative = Key();
        await Cache.SetAsync(absolute, [1], new DistributedCacheEntryOptions { AbsoluteExpiration = Cluster.Time.GetUtcNow().AddSeconds(10) }, Ct);
        await Cache.SetAsync(relative, [1], new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromSeconds(10) }, Ct);

        Cluster.Time.Advance(TimeSpan.FromSeconds(10) - TimeSpan.FromMilliseconds(1));
        Assert.NotNull(await Cache.GetAsync(absolute, Ct));
        Assert.NotNull(await Cache.GetAsync(relative, Ct));
        Cluster.Time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Null(await Cache.GetAsync(absolute, Ct));
        Assert.Null(await Cache.GetAsync(relative, Ct));
    }

    [Fact]
    public async Task Sliding_expiration_ends_an_unused_entry_and_access_or_refresh_renews_it_until_the_absolute_expiration()
    {
        var unused = Key();
        var used = Key();
        var options = new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromSeconds(10), AbsoluteExpirationRelativeToNow = TimeSpan.FromSeconds(25) };
        await Cache.SetAsync(unused, [1], options, Ct);
        await Cache.SetAsync(used, [1], options, Ct);

        Cluster.Time.Advance(TimeSpan.FromSeconds(8));
        Assert.NotNull(await Cache.GetAsync(used, Ct));
        Cluster.Time.Advance(TimeSpan.FromSeconds(8));
        await Cache.RefreshAsync(used, Ct);
        Assert.Null(await Cache.GetAsync(unused, Ct));
        Cluster.Time.Advance(TimeSpan.FromSeconds(8));
        Assert.NotNull(await Cache.GetAsync(used, Ct)); // 24 s: renewed by the reads
        Cluster.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(await Cache.GetAsync(used, Ct)); // 25 s: the absolute expiration wins
    }

    [Fact]
    public async Task Bad_arguments_throw_and_store_nothing()
    {
        var key = Key();
        await Assert.ThrowsAsync<ArgumentNullException>(() => Cache.GetAsync(null!, Ct));
        await Assert.ThrowsAsync<ArgumentNullException>(() => Cache.SetAsync(null!, [1], new DistributedCacheEntryOptions(), Ct));
        await Assert.ThrowsAsync<ArgumentNullException>(() => Cache.SetAsync(key, null!, new DistributedCacheEntryOptions(), Ct));
        await Assert.ThrowsAsync<ArgumentNullException>(() => Cache.RemoveAsync(null!, Ct));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Cache.SetAsync(key, [1], new DistributedCacheEntryOptions { AbsoluteExpiration = Cluster.Time.GetUtcNow().AddSeconds(-1) }, Ct));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.Zero });
        Assert.Throws<ArgumentOutOfRangeException>(() => new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromSeconds(-1) });
        Assert.Null(await Cache.GetAsync(key, Ct));
    }

    [Fact]
    public async Task Keys_are_stored_as_hashes_never_as_given()
    {
        var key = "user-visible-key-" + Guid.NewGuid().ToString("N");
        await Cache.SetAsync(key, [7], new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromMinutes(5) }, Ct);

        var keys = new List<string>();
        await foreach (var stored in Cluster.Redis!.Server.KeysAsync(pattern: Cluster.ServiceId + "/e/*"))
        {
            keys.Add(stored.ToString());
        }

        Assert.NotEmpty(keys);
        Assert.DoesNotContain(keys, k => k.Contains(key, StringComparison.Ordinal));
        var hashed = System.Buffers.Text.Base64Url.EncodeToString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("sessiongrains-cache:" + key)));
        var entryKey = Cluster.ServiceId + "/e/" + hashed;
        Assert.Contains(entryKey, keys);
        Assert.NotNull(await Cluster.Redis.Database.KeyTimeToLiveAsync(entryKey)); // a sliding entry carries the storage backstop
    }
}
