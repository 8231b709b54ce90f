namespace SessionGrains;

/// <summary>
/// The near cache of a store (section <c>SessionStore:NearCache</c>): validations answered from the process's
/// memory while the session grain lends it a lease, every change called back before it returns (README,
/// "Near cache").
/// </summary>
public sealed class NearCacheOptions
{
    /// <summary>Most sessions kept; the least recently used go first. Default 100,000.</summary>
    public int MaxEntries { get; set; } = 100_000;

    /// <summary>Most memory the kept sessions take, estimated from their contents, in bytes. Default 64 MiB.</summary>
    public long MaxBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>
    /// Whether validations are answered from memory under leases. Null (the default): yes, in a frontend (an
    /// Orleans client) and inside a silo alike; docs/performance.md has the measurements behind it (a co-hosted
    /// store gains too: an answer from memory skips the grain's one-call-at-a-time queue). The cluster lends
    /// leases only while its <c>SessionStore:LeaseDuration</c> is above zero.
    /// </summary>
    public bool? Enabled { get; set; }

    internal IEnumerable<string> Validate(string section)
    {
        if (MaxEntries < 1)
        {
            yield return $"{section}:MaxEntries must be at least 1 (was {MaxEntries}).";
        }

        if (MaxBytes < 1024 * 1024)
        {
            yield return $"{section}:MaxBytes must be at least 1 MiB (was {MaxBytes}).";
        }
    }
}
