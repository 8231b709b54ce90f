using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using SessionGrains;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers <see cref="ISessionStore"/> for frontends and host apps.</summary>
public static partial class SessionGrainsServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="ISessionStore"/> over the Orleans client or silo already in the container
    /// (a host app that calls <c>UseOrleans(silo => silo.AddSessionGrains())</c>, or a frontend that set up
    /// its own <c>UseOrleansClient</c>), with its token keys validated at start-up. Unless
    /// <see cref="SessionStoreOptions.BatchValidations"/> says otherwise, concurrent validations are sent in
    /// batches by a frontend connected to a single silo (never inside a silo).
    /// </summary>
    public static IServiceCollection AddSessionStore(this IServiceCollection services, Action<SessionStoreOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<SessionStoreOptions>().ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SessionStoreOptions>, SessionStoreOptionsValidator>());
        services.TryAddSingleton(sp => CreateTokenCodec(
            sp.GetRequiredService<IOptions<SessionStoreOptions>>().Value,
            sp.GetRequiredService<ILoggerFactory>().CreateLogger<SessionStore>()));
        if (!services.Any(service => service.ServiceType == typeof(GatewayCount)))
        {
            // Once, however often this is called: Orleans notifies every registered observer.
            services.AddSingleton<GatewayCount>();
            services.AddSingleton<IClusterConnectionStatusObserver>(sp => sp.GetRequiredService<GatewayCount>());
        }

        services.TryAddSingleton<ISessionStore>(sp => new SessionStore(
            sp.GetRequiredService<IGrainFactory>(),
            sp.GetRequiredService<SessionTokenCodec>(),
            ValidationPath(sp)));
        return services;
    }

    /// <summary>
    /// A frontend in one call: an Orleans client connected to the SessionGrains cluster (Redis clustering,
    /// or the local silo when <see cref="SessionGrainsClientOptions.Redis"/> is not set) and
    /// <see cref="ISessionStore"/> over it. With Redis, token keys are required.
    /// </summary>
    public static IServiceCollection AddSessionGrainsClient(this IServiceCollection services, Action<SessionGrainsClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = new SessionGrainsClientOptions();
        configure?.Invoke(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.ClusterId, "SessionStore:ClusterId");
        ArgumentException.ThrowIfNullOrWhiteSpace(options.ServiceId, "SessionStore:ServiceId");

        services.AddOrleansClient(client =>
        {
            client.Configure<ClusterOptions>(cluster =>
            {
                cluster.ClusterId = options.ClusterId;
                cluster.ServiceId = options.ServiceId;
            });
            client.Configure<ClientMessagingOptions>(messaging => messaging.ResponseTimeout = options.ResponseTimeout);
            if (options.Redis is { } redis)
            {
                var configuration = RedisConfiguration.Parse(redis, "SessionStore:Redis", options.RedisCaCertificate);
                client.UseRedisClustering(o => o.ConfigurationOptions = configuration);
            }
            else
            {
                client.UseLocalhostClustering(options.GatewayPort, options.ServiceId, options.ClusterId);
            }
        });
        return services.AddSessionStore(store =>
        {
            store.TokenKeys = options.TokenKeys;
            store.RequireTokenKeys = options.Redis is not null;
            store.BatchValidations = options.BatchValidations;
        });
    }

    /// <summary>The store's validation path, chosen once: straight to the grain in a silo; in a frontend, batched while it is connected to one silo only.</summary>
    private static IValidationPath ValidationPath(IServiceProvider services) => ValidationPaths.Choose(
        services.GetRequiredService<IGrainFactory>(),
        inSilo: services.GetService<Orleans.Runtime.ILocalSiloDetails>() is not null,
        services.GetRequiredService<IOptions<SessionStoreOptions>>().Value.BatchValidations,
        services.GetRequiredService<GatewayCount>());

    private static SessionTokenCodec CreateTokenCodec(SessionStoreOptions options, ILogger logger)
    {
        if (options.TokenKeys is { } keys && !string.IsNullOrWhiteSpace(keys))
        {
            return new SessionTokenCodec(SessionTokenCodec.ParseKeys(keys, SessionStoreOptionsValidator.TokenKeysSetting));
        }

        Log.EphemeralTokenKey(logger, SessionStoreOptionsValidator.TokenKeysSetting);
        return SessionTokenCodec.Ephemeral();
    }

    private static partial class Log
    {
        [LoggerMessage(4001, LogLevel.Warning, "{Setting} is not set: tokens are signed with a key generated for this process; they stop working when it restarts and other processes cannot check them.")]
        public static partial void EphemeralTokenKey(ILogger logger, string setting);
    }
}
