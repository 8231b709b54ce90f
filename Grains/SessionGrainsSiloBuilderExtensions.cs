using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
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
            collection.ClassSpecificCollectionAge[typeof(SessionGrain).FullName!] = options.IdleSessionDeactivation);

        if (options.Redis is { } redis)
        {
            AddRedisStorage(builder, RedisConfiguration.Parse(redis, $"{SessionGrainsOptions.SectionName}:Redis"));
        }
        else
        {
            builder.AddMemoryGrainStorage(StorageNames.Sessions);
            builder.AddMemoryGrainStorage(StorageNames.UserIndex);
            builder.UseInMemoryReminderService();
        }

        return builder;
    }

    private static void AddRedisStorage(ISiloBuilder builder, ConfigurationOptions redis)
    {
        const string InnerSuffix = ".Redis";
        builder.Services.TryAddSingleton(new RedisConnection(redis.Clone()));
        foreach (var name in new[] { StorageNames.Sessions, StorageNames.UserIndex })
        {
            builder.AddRedisGrainStorage(name + InnerSuffix, optionsBuilder => optionsBuilder.Configure<IOptions<ClusterOptions>>((o, cluster) =>
            {
                o.ConfigurationOptions = redis.Clone();
                o.GetStorageKey = (_, grainId) => StorageKey(cluster.Value.ServiceId, grainId);
                o.DeleteStateOnClear = true;
                o.GrainStorageSerializer = new StorageJsonSerializer();
            }));
            builder.Services.AddKeyedSingleton<IGrainStorage>(name, (services, _) => new RedisSessionExpiryBackstop(
                services.GetRequiredKeyedService<IGrainStorage>(name + InnerSuffix),
                grainId => StorageKey(services.GetRequiredService<IOptions<ClusterOptions>>().Value.ServiceId, grainId),
                services.GetRequiredService<RedisConnection>(),
                services.GetRequiredService<IOptions<SessionGrainsOptions>>().Value));
        }

        builder.UseRedisReminderService(o => o.ConfigurationOptions = redis.Clone());
    }

    /// <summary>The Redis key of a grain's state: <c>{serviceId}/state/{grainType}/{key}</c>.</summary>
    internal static RedisKey StorageKey(string serviceId, GrainId grainId) => $"{serviceId}/state/{grainId}";
}
