namespace SessionGrains;

/// <summary>References to the grains only silos call, resolved once per interface as in <see cref="GrainReferences"/>.</summary>
internal static class SiloGrainReferences
{
    /// <summary>The session grain with this public session id, through what its index and expiry bucket call.</summary>
    public static ISessionLifecycleGrain SessionLifecycle(this IGrainFactory grains, string sessionId) =>
        GrainReferences.Get<ISessionLifecycleGrain>(grains, GrainTypeNames.Session, sessionId);

    /// <summary>The expiry bucket with this key.</summary>
    public static ISessionExpiryBucketGrain ExpiryBucket(this IGrainFactory grains, string bucketKey) =>
        GrainReferences.Get<ISessionExpiryBucketGrain>(grains, SiloGrainTypeNames.ExpiryBucket, bucketKey);
}

/// <summary>The grain type names only silos address: part of the storage format (stored keys contain them).</summary>
internal static class SiloGrainTypeNames
{
    public const string ExpiryBucket = "sessiongrains.expiry-bucket";
    public const string SessionValidation = "sessiongrains.session-validation";
    public const string SessionCounter = "sessiongrains.session-counter";
    public const string CacheEntry = "sessiongrains.cache-entry";
    public const string PostgresSweep = "sessiongrains.postgres-sweep";
    public const string MemoryEventLog = "sessiongrains.memory-event-log";
    public const string EventFeed = "sessiongrains.session-event-feed";

    /// <summary>Not a grain: the storage identity of one page of an expiry bucket's session ids.</summary>
    public const string ExpiryBucketPage = "sessiongrains.expiry-bucket-page";
}
