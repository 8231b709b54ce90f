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
    /// Adds the session grains, their options (validated at start-up), grain storage and reminders.
    /// With <see cref="SessionGrainsOptions.Redis"/> set, state and reminders live in Redis; without it,
    /// in memory (the embedded default, lost when the silo stops). Clustering is the host's choice.
    /// </summary>
    public static ISiloBuilder AddSessionGrains(this ISiloBuilder builder, Action<SessionGrainsOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);

        // The storage choice is made now, so the options are also read now; the same delegate feeds IOptions.
        var options = new SessionGrainsOptions();
        configure?.Invoke(options);

        var services = builder.Services;
        services.AddOptions<SessionGrainsOptions>().Configure(o => configure?.Invoke(o)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SessionGrainsOptions>, SessionGrainsOptionsValidator>());
        builder.Configure<GrainCollectionOptions>(collection =>
        {
            // Silo memory follows the active set: what is idle goes, and comes back from storage when used.
            foreach (var grainClass in new[] { typeof(SessionGrain), typeof(UserSessionsGrain), typeof(SessionExpiryBucketGrain), typeof(CacheEntryGrain) })
            {
                collection.ClassSpecificCollectionAge[grainClass.FullName!] = options.IdleSessionDeactivation;
            }
        });

        services.TryAddSingleton<SessionGrainsMetrics>();
        services.TryAddSingleton<LastSiloShutdown>();
        var redis = options.Redis is { } configuration
            ? RedisConfiguration.Parse(configuration, $"{SessionGrainsOptions.SectionName}:Redis", options.RedisCaCertificate)
            : null;
        if (redis is not null)
        {
            services.TryAddSingleton(new RedisConnection(redis.Clone()));
            builder.UseRedisReminderService(o => o.ConfigurationOptions = redis.Clone());
        }
        else
        {
            builder.UseInMemoryReminderService();
        }

        foreach (var name in new[] { StorageNames.Sessions, StorageNames.UserIndex })
        {
            // The provider is registered under an inner name; grains see it through SessionGrainStorage.
            var inner = name + (redis is null ? ".Memory" : ".Redis");
            if (redis is null)
            {
                // The same serializer as Redis, so the embedded default stores exactly what production stores.
                builder.AddMemoryGrainStorage(inner, o => o.GrainStorageSerializer = new StorageJsonSerializer());
            }
            else
            {
                builder.AddRedisGrainStorage(inner, optionsBuilder => optionsBuilder.Configure<IOptions<ClusterOptions>>((o, cluster) =>
                {
                    o.ConfigurationOptions = redis.Clone();
                    o.GetStorageKey = (_, grainId) => StorageKey(cluster.Value.ServiceId, grainId);
                    o.DeleteStateOnClear = true;
                    o.GrainStorageSerializer = new StorageJsonSerializer();
                }));
            }

            services.AddKeyedSingleton<IGrainStorage>(name, (sp, _) => new SessionGrainStorage(
                name,
                sp.GetRequiredKeyedService<IGrainStorage>(inner),
                sp.GetRequiredService<SessionGrainsMetrics>(),
                redis is null ? null : new RedisSessionExpiryBackstop(
                    grainId => StorageKey(sp.GetRequiredService<IOptions<ClusterOptions>>().Value.ServiceId, grainId),
                    sp.GetRequiredService<RedisConnection>(),
                    sp.GetRequiredService<IOptions<SessionGrainsOptions>>().Value),
                redis is null ? sp.GetRequiredService<LastSiloShutdown>() : null,
                sp.GetRequiredService<ILogger<SessionGrainStorage>>()));
        }

        return builder;
    }

    /// <summary>The Redis key of a grain's state: <c>{serviceId}/state/{grainType}/{key}</c>.</summary>
    internal static RedisKey StorageKey(string serviceId, GrainId grainId) => $"{serviceId}/state/{grainId}";
}
