using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Persistence;
using Orleans.Storage;
using SessionGrains;
using StackExchange.Redis;

namespace Orleans.Hosting;

/// <summary>Embeds SessionGrains in a silo: <c>builder.UseOrleans(silo => silo.AddSessionGrains())</c>.</summary>
public static class SessionGrainsSiloBuilderExtensions
{
    /// <summary>
    /// Adds the session grains with their settings bound from <paramref name="section"/> (the
    /// <c>SessionStore</c> section): <see cref="SessionGrainsOptions"/>, and of <see cref="SessionClusterOptions"/>
    /// the Redis settings. Everything is validated at start-up. See <see cref="AddSessionGrains(ISiloBuilder, Action{SessionGrainsOptions}?, Action{SessionClusterOptions}?)"/>.
    /// </summary>
    public static ISiloBuilder AddSessionGrains(this ISiloBuilder builder, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(section);
        return Add(builder, section, configure: null, configureCluster: null);
    }

    /// <summary>
    /// Adds the session grains, their options (validated at start-up), grain storage and reminders.
    /// With <see cref="SessionClusterOptions.Redis"/> set, state and reminders live in Redis; without it,
    /// in memory (the embedded default, lost when the silo stops). Clustering (ids, ports) is the host's
    /// choice: of <see cref="SessionClusterOptions"/> only the Redis settings are read here.
    /// </summary>
    public static ISiloBuilder AddSessionGrains(this ISiloBuilder builder, Action<SessionGrainsOptions>? configure = null, Action<SessionClusterOptions>? configureCluster = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return Add(builder, section: null, configure, configureCluster);
    }

    private static ISiloBuilder Add(ISiloBuilder builder, IConfiguration? section, Action<SessionGrainsOptions>? configure, Action<SessionClusterOptions>? configureCluster)
    {
        var services = builder.Services;
        services.AddValidatedOptions<SessionGrainsOptions, SessionGrainsOptionsValidator>(section, configure);
        services.AddValidatedOptions<SessionClusterOptions, SessionClusterOptionsValidator>(section, configureCluster);
        services.AddOptions<GrainCollectionOptions>().Configure<IOptions<SessionGrainsOptions>>((collection, options) =>
        {
            // Silo memory follows the active set: what is idle goes, and comes back from storage when used.
            foreach (var grainClass in new[] { typeof(SessionGrain), typeof(UserSessionsGrain), typeof(SessionExpiryBucketGrain), typeof(CacheEntryGrain) })
            {
                collection.ClassSpecificCollectionAge[grainClass.FullName!] = options.Value.IdleSessionDeactivation;
            }
        });

        UseStronglyConsistentDirectory(builder);

        // Orleans' watchdog warns of a deadlock at every other start that is not one (WatchdogStartFilter).
        services.TryAddSingleton(_ => new WatchdogStartFilter(TimeProvider.System));
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<WatchdogStartFilter>());
        services.AddOptions<LoggerFilterOptions>().Configure<WatchdogStartFilter>((o, filter) => o.Rules.Add(filter.Rule()));

        // A storage failure is one line (SessionGrainStorage.LogCategory); Orleans repeats each one with its stack under the storage's type name.
        services.Configure<LoggerFilterOptions>(o => o.AddFilter(typeof(SessionGrainStorage).FullName, LogLevel.None));

        // So does Orleans' ADO.NET provider under its own (PostgreSQL): it only serves as SessionGrainStorage's inner store.
        services.Configure<LoggerFilterOptions>(o => o.AddFilter(typeof(AdoNetGrainStorage).FullName, LogLevel.None));

        services.TryAddSingleton<SessionGrainsMetrics>();
        services.TryAddSingleton<LastSiloShutdown>();

        // The storage providers are chosen now, from what IOptions will hold; the Redis string itself is read
        // (and checked) when the silo starts.
        var registered = services.Registered<SessionClusterOptions>();
        var redis = registered.Redis;
        var postgres = registered.Postgres is not null;
        if (postgres)
        {
            AddPostgres(builder);
        }
        else if (redis is not null)
        {
            services.TryAddSingleton(sp => new RedisConnection(ParseRedis(sp.GetRequiredService<IOptions<SessionClusterOptions>>())));
            services.TryAddSingleton<ISessionEventLog>(sp => new RedisSessionEventLog(
                sp.GetRequiredService<IOptions<ClusterOptions>>().Value.ServiceId,
                sp.GetRequiredService<RedisConnection>(),
                sp.GetRequiredService<IOptions<SessionGrainsOptions>>().Value.Events));
            builder.UseRedisReminderService(_ => { });
            services.AddOptions<RedisReminderTableOptions>().Configure<IOptions<SessionClusterOptions>>((o, cluster) => o.ConfigurationOptions = ParseRedis(cluster));
        }
        else
        {
            builder.UseInMemoryReminderService();
            services.TryAddSingleton<ISessionEventLog, MemorySessionEventLog>();
        }

        foreach (var name in new[] { StorageNames.Sessions, StorageNames.UserIndex })
        {
            // The provider is registered under an inner name; grains see it through SessionGrainStorage.
            var inner = name + (postgres ? ".Postgres" : redis is null ? ".Memory" : ".Redis");
            if (postgres)
            {
                builder.AddAdoNetGrainStorage(inner, optionsBuilder => optionsBuilder.Configure<IOptions<SessionClusterOptions>>((o, cluster) =>
                {
                    o.Invariant = PostgresConfiguration.Invariant;
                    o.ConnectionString = PostgresConfiguration.ForGrainStorage(cluster.Value.Postgres!).ConnectionString;
                    o.GrainStorageSerializer = new StorageJsonSerializer();

                    // An ended session's row goes (no TTL backstop here: the expiry buckets are the cleanup).
                    o.DeleteStateOnClear = true;
                }));
            }
            else if (redis is null)
            {
                // JSON copies: what a grain holds is never the stored object itself.
                builder.AddMemoryGrainStorage(inner, o => o.GrainStorageSerializer = new StorageJsonSerializer());
            }
            else
            {
                // Orleans' Redis provider reads and writes the legacy format; RedisStateStorage uses it for that alone.
                var legacy = name + ".RedisLegacy";
                builder.AddRedisGrainStorage(legacy, optionsBuilder => optionsBuilder.Configure<IOptions<ClusterOptions>, IOptions<SessionClusterOptions>>((o, cluster, sessionCluster) =>
                {
                    o.ConfigurationOptions = ParseRedis(sessionCluster);
                    o.GetStorageKey = (_, grainId) => RedisStateStorage.LegacyKeyOf(cluster.Value.ServiceId, grainId);
                    o.DeleteStateOnClear = true;
                    o.GrainStorageSerializer = new StorageJsonSerializer();
                }));
                services.AddKeyedSingleton<IGrainStorage>(inner, (sp, _) => new RedisStateStorage(
                    sp.GetRequiredService<IOptions<ClusterOptions>>().Value.ServiceId,
                    sp.GetRequiredKeyedService<IGrainStorage>(legacy),
                    sp.GetRequiredService<RedisConnection>(),
                    sp.GetRequiredService<IOptions<SessionGrainsOptions>>().Value));
            }

            services.AddKeyedSingleton<IGrainStorage>(name, (sp, _) => new SessionGrainStorage(
                name,
                sp.GetRequiredKeyedService<IGrainStorage>(inner),
                sp.GetRequiredService<SessionGrainsMetrics>(),
                redis is null && !postgres ? sp.GetRequiredService<LastSiloShutdown>() : null,
                sp.GetRequiredService<ILoggerFactory>(),
                postgres ? PostgresConfiguration.ForGrainStorage(sp.GetRequiredService<IOptions<SessionClusterOptions>>().Value.Postgres!).Deadline : null));
        }

        return builder;
    }

    /// <summary>
    /// Reminders and the session event log in PostgreSQL, and a check before anything else starts that the database has
    /// this release's schema (<see cref="PostgresSchema"/>): without it Orleans' providers fail on their first query
    /// with a bare SQL error.
    /// </summary>
    private static void AddPostgres(ISiloBuilder builder)
    {
        builder.UseAdoNetReminderService(optionsBuilder => optionsBuilder.Configure<IOptions<SessionClusterOptions>>((o, cluster) =>
        {
            o.Invariant = PostgresConfiguration.Invariant;
            o.ConnectionString = PostgresConfiguration.ForProviders(cluster.Value.Postgres!);
        }));
        builder.Services.TryAddSingleton(sp => new PostgresSessionEventLog(
            sp.GetRequiredService<IOptions<ClusterOptions>>().Value.ServiceId,
            sp.GetRequiredService<IOptions<SessionClusterOptions>>().Value.Postgres!,
            sp.GetRequiredService<IOptions<SessionGrainsOptions>>().Value.Events));
        builder.Services.TryAddSingleton<ISessionEventLog>(sp => sp.GetRequiredService<PostgresSessionEventLog>());
        builder.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, PostgresSchemaCheck>();
        builder.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, PostgresSweepStart>();
        EnsureThreadsForNpgsqlCancellation();
    }

    /// <summary>The fewest thread-pool workers a silo on PostgreSQL starts with (.NET's default is one per core).</summary>
    internal const int LeastWorkerThreadsOnPostgres = 32;

    /// <summary>
    /// Npgsql answers a query's timeout by cancelling it on a second connection, synchronously: each holds a
    /// thread-pool thread while it waits for the database (up to the connect timeout). The grain storage gives no
    /// query a timeout (<see cref="PostgresConfiguration.ForGrainStorage"/>), but Orleans' clustering and reminder
    /// providers do. Measured with PostgreSQL frozen for 15 s on two cores: with .NET's default minimum (one thread a
    /// core) those few blocked threads stalled the whole silo for 3-4 s at a time, validations from memory included,
    /// and requests took 9-12 s to fail; with this minimum none stalled and every request failed within the 2 s
    /// deadline. Raises the process' minimum only; a host that set a higher one keeps it.
    /// </summary>
    private static void EnsureThreadsForNpgsqlCancellation()
    {
        ThreadPool.GetMinThreads(out var workers, out var completionPorts);
        if (workers < LeastWorkerThreadsOnPostgres)
        {
            ThreadPool.SetMinThreads(LeastWorkerThreadsOnPostgres, completionPorts);
        }
    }

    /// <summary>
    /// Orleans' distributed grain directory instead of its default one. After a silo crash the default directory can
    /// run a grain twice for a moment (the crashed silo held the registration; another silo places a second copy
    /// before the first is told), and a second copy of a session answers from a memory no write reaches: stale
    /// versions and revoked sessions, with or without the near cache. This directory recovers a crashed silo's
    /// registrations from the survivors before it places anything, so a session has one activation.
    /// </summary>
    private static void UseStronglyConsistentDirectory(ISiloBuilder builder)
    {
#pragma warning disable ORLEANSEXP003 // Experimental in Orleans 10.4; the default directory's duplicates break the lease guarantee.
        builder.AddDistributedGrainDirectory();
#pragma warning restore ORLEANSEXP003

        // Orleans' range leases also cover a silo declared dead that is still running, but they block every grain the
        // crashed silo's directory range held (a third of the sessions in three silos) for about 30 s after each
        // crash. Off by default: a session store that refuses a third of its validations after a crash is down.
        // A host app that prefers the wait configures GrainDirectoryOptions after AddSessionGrains.
        builder.Services.AddOptions<GrainDirectoryOptions>().Configure(o => o.RangeLeaseDuration = TimeSpan.Zero);
    }

    /// <summary>A new copy of the validated Redis configuration, one per consumer as each changes its own.</summary>
    private static ConfigurationOptions ParseRedis(IOptions<SessionClusterOptions> cluster) =>
        cluster.Value.ParseRedis()
            ?? throw new InvalidOperationException($"{RedisConfiguration.RedisSetting} was set when the silo was configured and is not now.");
}
