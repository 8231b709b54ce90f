using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Caching.Distributed;

namespace SessionGrains;

/// <summary>
/// <see cref="IDistributedCache"/> in the session cluster, so <c>services.AddSession()</c> + <c>app.UseSession()</c>
/// keep ASP.NET Core session state there. Keys are stored as SHA-256 hashes, never as given. Absolute,
/// relative-to-now and sliding expirations behave as in ASP.NET Core's own caches; <c>Refresh</c> slides.
/// </summary>
public sealed class SessionGrainsDistributedCache(IGrainFactory grains, TimeProvider time) : IDistributedCache
{
    /// <inheritdoc/>
    public byte[]? Get(string key) => GetAsync(key).GetAwaiter().GetResult();

    /// <inheritdoc/>
    public Task<byte[]?> GetAsync(string key, CancellationToken token = default) =>
        Entry(key).GetAsync(slide: true).WaitAsync(token);

    /// <inheritdoc/>
    public void Set(string key, byte[] value, DistributedCacheEntryOptions options) => SetAsync(key, value, options).GetAwaiter().GetResult();

    /// <inheritdoc/>
    public Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default)
    {
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(options);
        var now = time.GetUtcNow();
        if (options.AbsoluteExpiration is { } absolute && absolute <= now)
        {
            throw new ArgumentOutOfRangeException(nameof(options), absolute, "The absolute expiration value must be in the future.");
        }

        if (options.AbsoluteExpirationRelativeToNow is { } relative && relative <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), relative, "The relative expiration value must be positive.");
        }

        if (options.SlidingExpiration is { } sliding && sliding <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), sliding, "The sliding expiration value must be positive.");
        }

        var expiresAt = options.AbsoluteExpirationRelativeToNow is { } fromNow ? now + fromNow : options.AbsoluteExpiration;
        return Entry(key).SetAsync(new CacheEntry(value, expiresAt, options.SlidingExpiration)).WaitAsync(token);
    }

    /// <inheritdoc/>
    public void Refresh(string key) => RefreshAsync(key).GetAwaiter().GetResult();

    /// <inheritdoc/>
    public Task RefreshAsync(string key, CancellationToken token = default) =>
        Entry(key).GetAsync(slide: true).WaitAsync(token);

    /// <inheritdoc/>
    public void Remove(string key) => RemoveAsync(key).GetAwaiter().GetResult();

    /// <inheritdoc/>
    public Task RemoveAsync(string key, CancellationToken token = default) => Entry(key).RemoveAsync().WaitAsync(token);

    private ICacheEntryGrain Entry(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return grains.GetGrain<ICacheEntryGrain>(Base64Url.EncodeToString(SHA256.HashData(Encoding.UTF8.GetBytes("sessiongrains-cache:" + key))));
    }
}
