namespace SessionGrains.Benchmarks;

/// <summary>
/// SessionGrains behind a round-robin load balancer: three frontends of the external target's silos, each
/// its own host, Orleans client and <see cref="ISessionStore"/> (and near cache when on), as three web
/// servers are. The first is the external target's own client; the others are started for this target.
/// </summary>
internal sealed class FrontendsTarget : ISessionTarget
{
    private readonly SessionGrainsTarget[] _frontends;
    private long _next = -1;

    private FrontendsTarget(string name, bool nearCache, SessionGrainsTarget external, SessionGrainsTarget[] frontends)
    {
        Name = name;
        NearCache = nearCache;
        External = external;
        _frontends = frontends;
    }

    public string Name { get; }

    /// <summary>Whether the frontends' near caches are on.</summary>
    public bool NearCache { get; }

    /// <summary>The external target whose silos and first client these frontends use.</summary>
    public SessionGrainsTarget External { get; }

    public IReadOnlyList<SessionGrainsTarget> Frontends => _frontends;

    /// <param name="external">An external target whose near cache is <paramref name="nearCache"/>: its client is the first frontend.</param>
    public static async Task<FrontendsTarget> StartAsync(SessionGrainsTarget external, bool nearCache, int count = 3)
    {
        var name = $"SessionGrains, {count} frontends" + SessionGrainsTarget.CacheSuffix(nearCache);
        var frontends = new SessionGrainsTarget[count];
        frontends[0] = external;
        for (var i = 1; i < count; i++)
        {
            frontends[i] = await external.StartFrontendAsync($"{name}, frontend {i + 1}", nearCache);
        }

        return new FrontendsTarget(name, nearCache, external, frontends);
    }

    /// <summary>The next frontend in round-robin order, as a load balancer picks it per request.</summary>
    public SessionGrainsTarget Next() => _frontends[(int)((ulong)Interlocked.Increment(ref _next) % (ulong)_frontends.Length)];

    public bool Supports(Workload workload) => workload == Workload.Realistic || workload.ForFrontends;

    public Task<string> CreateAsync(string userId) => Next().CreateAsync(userId);

    public Task<bool> ValidateAsync(string handle) => Next().ValidateAsync(handle);

    public Task UpdateAsync(string handle, int value) => Next().UpdateAsync(handle, value);

    public Task<int> ListByUserAsync(string userId) => Next().ListByUserAsync(userId);

    public Task<int> DeleteAllForUserAsync(string userId) => Next().DeleteAllForUserAsync(userId);

    public Task<long> CountAsync() => Next().CountAsync();

    public Task StoreManyAsync(int count) => Next().StoreManyAsync(count);

    /// <summary>The three frontends' counts together.</summary>
    public NearCacheCounts? ReadNearCache() =>
        _frontends.Select(f => f.ReadNearCache() ?? default).Aggregate(default(NearCacheCounts), (sum, counts) => sum.Add(counts));

    /// <summary>Stops the frontends started for this target; the first is the external target's, which stops it.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var frontend in _frontends.Skip(1))
        {
            await frontend.DisposeAsync();
        }
    }
}
