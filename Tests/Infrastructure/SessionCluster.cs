using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Orleans.Hosting;
using Orleans.Runtime;
using Orleans.TestingHost;
using StackExchange.Redis;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>
/// An in-process Orleans cluster running the session grains. With a <see cref="RedisServer"/> it uses the
/// production providers (Redis grain storage and reminders); without one, the embedded default (in-memory).
/// Membership is the test cluster's own; Redis clustering is exercised by the silo host tests.
/// The grains read <see cref="Time"/>, a fake clock that starts at the real time and moves only when told.
/// </summary>
public sealed class SessionCluster : IAsyncDisposable
{
    private SessionCluster(InProcessTestCluster cluster, FakeTimeProvider time, string serviceId, RedisServer? redis, SessionTokenCodec tokens)
    {
        Cluster = cluster;
        Time = time;
        ServiceId = serviceId;
        Redis = redis;
        Tokens = tokens;
        // Every path of a frontend's store: the near cache over batches, its expiry on the grains' fake clock.
        NearCache = new SessionNearCache(cluster.Client, new ValidationBatcher(cluster.Client, () => true), new NearCacheOptions(), time, Meters);
        Store = new SessionStore(cluster.Client, Tokens, NearCache);
        UncachedStore = new SessionStore(cluster.Client, Tokens, new ValidationBatcher(cluster.Client, () => true));
    }

    /// <summary>For the near caches' instruments.</summary>
    public static System.Diagnostics.Metrics.IMeterFactory Meters { get; } =
        new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();

    /// <summary>The near cache of <see cref="Store"/>, as a frontend has one.</summary>
    internal SessionNearCache NearCache { get; }

    /// <summary>A frontend's store without a near cache: every validation reaches its grain.</summary>
    public ISessionStore UncachedStore { get; }

    /// <summary>Another frontend: a store with a near cache of its own (its own lease holder).</summary>
    internal (ISessionStore Store, SessionNearCache Cache) NewFrontend(NearCacheOptions? options = null)
    {
        var cache = new SessionNearCache(Cluster.Client, new ValidationBatcher(Cluster.Client, () => true), options ?? new NearCacheOptions(), Time, Meters);
        return (new SessionStore(Cluster.Client, Tokens, cache), cache);
    }

    public InProcessTestCluster Cluster { get; }

    public FakeTimeProvider Time { get; }

    public string ServiceId { get; }

    public RedisServer? Redis { get; }

    public SessionTokenCodec Tokens { get; }

    public ISessionStore Store { get; }

    public IGrainFactory Grains => Cluster.Client;

    public static async Task<SessionCluster> StartAsync(
        RedisServer? redis,
        short silos = 2,
        Action<SessionGrainsOptions>? configure = null,
        Action<ISiloBuilder>? configureSilo = null,
        string? serviceId = null,
        SessionTokenCodec? tokens = null,
        Action<IServiceCollection>? configureClient = null,
        string? postgres = null)
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        serviceId ??= "test-" + Guid.NewGuid().ToString("N")[..10];
        var builder = new InProcessTestClusterBuilder(silos);
        builder.Options.ServiceId = serviceId;
        builder.Options.ClusterId = serviceId;
        builder.ConfigureHost(host => host.Logging.AddTokenLogWatch());
        builder.ConfigureClientHost(host =>
        {
            host.Logging.AddTokenLogWatch();
            configureClient?.Invoke(host.Services);
        });
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddSessionGrains(
                options =>
                {
                    options.TimeProvider = time;

                    // Expiry checks a second after a session's expiry, so cleanup tests take seconds, not a minute.
                    options.ExpiryBucketWidth = TimeSpan.FromSeconds(1);
                    configure?.Invoke(options);
                },
                cluster =>
                {
                    cluster.Redis = redis?.ConnectionString;
                    cluster.Postgres = postgres;
                });
            configureSilo?.Invoke(silo);
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return new SessionCluster(cluster, time, serviceId, redis, tokens ?? SessionTokenCodec.Ephemeral());
    }

    /// <summary>The Redis key of a session's stored state.</summary>
    public RedisKey SessionKey(string sessionId) => RedisStateStorage.KeyOf(ServiceId, SessionRecord.StorageIdOf(sessionId));

    /// <summary>The Redis key of a user index's stored state.</summary>
    public RedisKey IndexKey(string userId) => RedisStateStorage.KeyOf(ServiceId, GrainId.Create(GrainTypeNames.UserSessions, userId));

    /// <summary>A session's stored state as Redis holds it now, or null when there is none.</summary>
    internal Task<SessionState?> StoredSessionAsync(string sessionId) =>
        StoredRecords.ReadAsync<SessionState>(Redis!.Database, ServiceId, SessionRecord.StorageIdOf(sessionId));

    /// <summary>Stores a session's state as another activation would: under an etag no silo of this cluster holds.</summary>
    internal Task StoreForeignSessionAsync(string sessionId, SessionState state) =>
        StoredRecords.WriteAsync(Redis!.Database, ServiceId, SessionRecord.StorageIdOf(sessionId), state);

    /// <summary>A user index's stored state as Redis holds it now, or null when there is none.</summary>
    internal async Task<UserSessionsState?> StoredIndexAsync(string userId)
    {
        var fields = await Redis!.Database.HashGetAllAsync(IndexKey(userId));
        return fields.Length == 0 ? null : RedisStateStorage.ParseIndex(fields).State;
    }

    /// <summary>Session grain activations across the cluster (Orleans' own statistics).</summary>
    public Task<int> SessionActivationsAsync() => ActivationsAsync(typeof(SessionGrain));

    /// <summary>Activations of one grain class across the cluster.</summary>
    public async Task<int> ActivationsAsync(Type grainClass) =>
        (await Grains.GetGrain<IManagementGrain>(0).GetSimpleGrainStatistics())
            .Where(s => s.GrainType.StartsWith(grainClass.FullName + ",", StringComparison.Ordinal))
            .Sum(s => s.ActivationCount);

    public async ValueTask DisposeAsync()
    {
        NearCache.Dispose();
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
    }
}

/// <summary>A cluster shared by the tests of one collection, on one store.</summary>
public abstract class StoreClusterFixture : IAsyncLifetime
{
    /// <summary>The per-user limit of every shared cluster.</summary>
    public const int MaxSessionsPerUser = 20;

    private SessionCluster? _cluster;

    public SessionCluster Cluster => _cluster ?? throw new InvalidOperationException("Not started.");

    public async ValueTask InitializeAsync() => _cluster = await StartAsync(o => o.MaxSessionsPerUser = MaxSessionsPerUser);

    public async ValueTask DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }

    /// <summary>Starts the collection's cluster, with the shared clusters' settings.</summary>
    protected abstract Task<SessionCluster> StartAsync(Action<SessionGrainsOptions> configure);
}

/// <summary>Two silos on Redis, shared by the tests of the "redis cluster" collection.</summary>
public sealed class RedisClusterFixture(RedisServer redis) : StoreClusterFixture
{
    public RedisServer Redis => redis;

    protected override Task<SessionCluster> StartAsync(Action<SessionGrainsOptions> configure) => SessionCluster.StartAsync(redis, 2, configure);
}

[CollectionDefinition(Name)]
public sealed class RedisClusterCollection : ICollectionFixture<RedisClusterFixture>
{
    public const string Name = "redis cluster";
}

/// <summary>Two silos on PostgreSQL (a database of their own, migrated), shared by the tests of the "postgres cluster" collection.</summary>
public sealed class PostgresClusterFixture(PostgresServer postgres) : StoreClusterFixture
{
    /// <summary>The connection string of the cluster's database.</summary>
    public string Database { get; private set; } = "";

    protected override async Task<SessionCluster> StartAsync(Action<SessionGrainsOptions> configure)
    {
        Database = await postgres.CreateDatabaseAsync();
        await PostgresSchema.MigrateAsync(Database);
        return await SessionCluster.StartAsync(redis: null, 2, configure, postgres: Database);
    }
}

[CollectionDefinition(Name)]
public sealed class PostgresClusterCollection : ICollectionFixture<PostgresClusterFixture>
{
    public const string Name = "postgres cluster";
}

/// <summary>Two silos with in-memory storage (the default deployment), shared by the tests of the "memory cluster" collection.</summary>
public sealed class MemoryClusterFixture : StoreClusterFixture
{
    protected override Task<SessionCluster> StartAsync(Action<SessionGrainsOptions> configure) => SessionCluster.StartAsync(redis: null, 2, configure);
}

[CollectionDefinition(Name)]
public sealed class MemoryClusterCollection : ICollectionFixture<MemoryClusterFixture>
{
    public const string Name = "memory cluster";
}
