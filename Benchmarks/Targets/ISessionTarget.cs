namespace SessionGrains.Benchmarks;

/// <summary>One store under test. A handle is what the store hands a browser (a token, or the seed's session id).</summary>
internal interface ISessionTarget : IAsyncDisposable
{
    string Name { get; }

    /// <summary>The server this target keeps its sessions in, whose CPU time its rows report.</summary>
    StoreServer Server => StoreServer.Redis;

    /// <summary>Workloads this target has an operation for (the seed has no sliding count, RedisCache no user index).</summary>
    bool Supports(Workload workload);

    Task<string> CreateAsync(string userId);

    /// <summary>Reads the session the way a request would (sliding where the target slides).</summary>
    Task<bool> ValidateAsync(string handle);

    Task UpdateAsync(string handle, int value);

    Task<int> ListByUserAsync(string userId);

    Task<int> DeleteAllForUserAsync(string userId);

    Task<long> CountAsync();

    /// <summary>Stores <paramref name="count"/> sessions as fast as the target allows (setup for the count workload).</summary>
    Task StoreManyAsync(int count);

    /// <summary>The near cache's hits and misses so far in this target's frontends; null for a store without one (the peers).</summary>
    NearCacheCounts? ReadNearCache() => null;
}

/// <summary>A server the targets keep their sessions in.</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<StoreServer>))]
internal enum StoreServer
{
    Redis,
    PostgreSQL,
}
