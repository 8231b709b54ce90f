namespace SessionGrains;

/// <summary>
/// One entry of the <c>IDistributedCache</c> adapter (ASP.NET Core session state). Keyed by the SHA-256 of
/// the cache key, never the key itself. Expiry follows the same rule as sessions (<see cref="SessionExpiry"/>).
/// </summary>
[Alias("sessiongrains.cache-entry")]
public interface ICacheEntryGrain : IGrainWithStringKey
{
    /// <summary>The value, or null when missing or expired; with <paramref name="slide"/> the sliding expiration moves on.</summary>
    [Alias("get")]
    Task<byte[]?> GetAsync(bool slide);

    /// <summary>Stores or replaces the entry.</summary>
    [Alias("set")]
    Task SetAsync(CacheEntry entry);

    /// <summary>Removes the entry.</summary>
    [Alias("remove")]
    Task RemoveAsync();
}

/// <summary>A cache value and when it expires: absolute (a time) and/or sliding (idle period); neither means never.</summary>
[GenerateSerializer, Immutable, Alias("sessiongrains.cache-entry-value")]
public sealed record class CacheEntry(
    [property: Id(0)] byte[] Value,
    [property: Id(1)] DateTimeOffset? AbsoluteExpiresAt,
    [property: Id(2)] TimeSpan? SlidingExpiration);
