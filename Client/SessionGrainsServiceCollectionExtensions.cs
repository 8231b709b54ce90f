using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Clustering.Redis;
using Orleans.Configuration;
using Orleans.Connections.Security;
using Orleans.Runtime;
using SessionGrains;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers <see cref="ISessionStore"/> for frontends and host apps.</summary>
public static partial class SessionGrainsServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="ISessionStore"/> with its <see cref="SessionStoreOptions"/> bound from
    /// <paramref name="section"/> (the <c>SessionStore</c> section). See <see cref="AddSessionStore(IServiceCollection, Action{SessionStoreOptions}?)"/>.
    /// </summary>
    public static IServiceCollection AddSessionStore(this IServiceCollection services, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(section);
        return AddStore(services, section, configure: null);
    }

    /// <summary>
    /// Registers <see cref="ISessionStore"/> over the Orleans client or silo already in the container
    /// (a host app that calls <c>UseOrleans(silo => silo.AddSessionGrains())</c>, or a frontend that set up
    /// its own <c>UseOrleansClient</c>), with its token keys validated at start-up (required when
    /// <see cref="SessionClusterOptions.Redis"/> is set). Unless <see cref="SessionStoreOptions.BatchValidations"/>
    /// says otherwise, concurrent validations are sent in batches by a frontend connected to a single silo
    /// (never inside a silo).
    /// </summary>
    public static IServiceCollection AddSessionStore(this IServiceCollection services, Action<SessionStoreOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        return AddStore(services, section: null, configure);
    }

    /// <summary>
    /// A frontend in one call, configured from <paramref name="section"/> (the <c>SessionStore</c> section):
    /// <see cref="SessionClusterOptions"/> and <see cref="SessionStoreOptions"/> are bound from it. See
    /// <see cref="AddSessionGrainsClient(IServiceCollection, Action{SessionClusterOptions}?, Action{SessionStoreOptions}?)"/>.
    /// </summary>
    public static IServiceCollection AddSessionGrainsClient(this IServiceCollection services, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(section);
        return AddClient(services, section, configure: null, configureStore: null);
    }

    /// <summary>
    /// A frontend in one call: an Orleans client connected to the SessionGrains cluster (Redis clustering,
    /// or the local silo at <see cref="SessionClusterOptions.GatewayPort"/> when <see cref="SessionClusterOptions.Redis"/>
    /// is not set) and <see cref="ISessionStore"/> over it. With Redis, token keys are required. With
    /// <see cref="SessionClusterOptions.TlsCertificate"/>, the connections to the gateways use mutual TLS. Every
    /// setting is validated when the host starts.
    /// </summary>
    public static IServiceCollection AddSessionGrainsClient(this IServiceCollection services, Action<SessionClusterOptions>? configure = null, Action<SessionStoreOptions>? configureStore = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        return AddClient(services, section: null, configure, configureStore);
    }

    private static IServiceCollection AddClient(IServiceCollection services, IConfiguration? section, Action<SessionClusterOptions>? configure, Action<SessionStoreOptions>? configureStore)
    {
        services.AddValidatedOptions<SessionClusterOptions, SessionClusterOptionsValidator>(section, configure);

        // The clustering provider and TLS are chosen now, from what IOptions will hold; the values are read at start.
        var registered = services.Registered<SessionClusterOptions>();
        var redis = registered.Redis is not null;
        var tls = ClusterTls.From(registered);
        services.AddOrleansClient(client =>
        {
            if (tls is not null)
            {
                // Mutual TLS: this frontend shows its certificate and talks only to gateways the cluster's CA or thumbprints name.
                client.UseTls(options =>
                {
                    options.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
                    options.LocalClientCertificateSelector = (_, _, _, _, _) => tls.Certificate;
                    options.RemoteCertificateValidation = tls.IsTrusted;
                });
            }

            if (registered.Postgres is not null)
            {
                // The gateways are the silos' rows in the membership table.
                client.UseAdoNetClustering(optionsBuilder => optionsBuilder.Configure<IOptions<SessionClusterOptions>>((o, options) =>
                {
                    o.Invariant = PostgresConfiguration.Invariant;
                    o.ConnectionString = PostgresConfiguration.ForProviders(options.Value.Postgres!);
                }));
            }
            else if (redis)
            {
                client.UseRedisClustering(_ => { });
                services.AddOptions<RedisClusteringOptions>().Configure<IOptions<SessionClusterOptions>>((o, options) => o.ConfigurationOptions = options.Value.ParseRedis());
            }
            else
            {
                // The local silo's gateway, read when the client starts (after validation has checked the port).
                client.UseStaticClustering(gateways => gateways.Configure<IOptions<SessionClusterOptions>>((o, options) =>
                    o.Gateways = [new IPEndPoint(IPAddress.Loopback, options.Value.GatewayPort).ToGatewayUri()]));
            }
        });
        services.AddOptions<ClusterOptions>().Configure<IOptions<SessionClusterOptions>>((o, options) =>
        {
            o.ClusterId = options.Value.ClusterId;
            o.ServiceId = options.Value.ServiceId;
        });
        services.AddOptions<ClientMessagingOptions>().Configure<IOptions<SessionClusterOptions>>((o, options) => o.ResponseTimeout = options.Value.ResponseTimeout);
        return AddStore(services, section, configureStore);
    }

    private static IServiceCollection AddStore(IServiceCollection services, IConfiguration? section, Action<SessionStoreOptions>? configure)
    {
        services.AddValidatedOptions<SessionStoreOptions, SessionStoreOptionsValidator>(section, configure);
        services.AddValidatedOptions<SessionClusterOptions, SessionClusterOptionsValidator>(section: null, configure: null); // the keys' rule reads Redis
        services.TryAddSingleton(sp => CreateTokenCodec(
            sp.GetRequiredService<IOptions<SessionStoreOptions>>().Value,
            // In a silo on in-memory storage the sessions end with the process anyway: its own key loses nothing more.
            endsWithProcess: sp.GetService<Orleans.Runtime.ILocalSiloDetails>() is not null && !sp.GetRequiredService<IOptions<SessionClusterOptions>>().Value.HasSharedStore,
            sp.GetRequiredService<ILoggerFactory>().CreateLogger<SessionStore>()));
        if (!services.Any(service => service.ServiceType == typeof(GatewayCount)))
        {
            // Once, however often this is called: Orleans notifies every registered observer.
            services.AddSingleton<GatewayCount>();
            services.AddSingleton<IClusterConnectionStatusObserver>(sp => sp.GetRequiredService<GatewayCount>());
        }

        services.AddMetrics();

        // A singleton of the container, which disposes it (the near cache's renewal timer) with the host.
        services.TryAddSingleton(ValidationPath);
        services.TryAddSingleton<ISessionStore>(sp => new SessionStore(
            sp.GetRequiredService<IGrainFactory>(),
            sp.GetRequiredService<SessionTokenCodec>(),
            sp.GetRequiredService<IValidationPath>()));
        return services;
    }

    /// <summary>
    /// The store's validation path, chosen once: the near cache, over batches in a frontend connected to one silo
    /// only, or straight to the grain.
    /// </summary>
    private static IValidationPath ValidationPath(IServiceProvider services) => ValidationPaths.Choose(
        services.GetRequiredService<IGrainFactory>(),
        inSilo: services.GetService<Orleans.Runtime.ILocalSiloDetails>() is not null,
        services.GetRequiredService<IOptions<SessionStoreOptions>>().Value,
        services.GetRequiredService<GatewayCount>(),
        services.GetService<TimeProvider>() ?? TimeProvider.System,
        services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());

    private static SessionTokenCodec CreateTokenCodec(SessionStoreOptions options, bool endsWithProcess, ILogger logger)
    {
        if (options.TokenKeys is { } keys && !string.IsNullOrWhiteSpace(keys))
        {
            return new SessionTokenCodec(SessionTokenCodec.ParseKeys(keys, SessionStoreOptionsValidator.TokenKeysSetting));
        }

        if (endsWithProcess)
        {
            Log.EphemeralTokenKeyInMemory(logger, SessionStoreOptionsValidator.TokenKeysSetting);
        }
        else
        {
            Log.EphemeralTokenKey(logger, SessionStoreOptionsValidator.TokenKeysSetting);
        }

        return SessionTokenCodec.Ephemeral();
    }

    private static partial class Log
    {
        [LoggerMessage(4001, LogLevel.Warning, "{Setting} is not set: tokens are signed with a key generated for this process; they stop working when it restarts and other processes cannot check them.")]
        public static partial void EphemeralTokenKey(ILogger logger, string setting);

        [LoggerMessage(4002, LogLevel.Information, "{Setting} is not set: tokens are signed with a key generated for this process, which ends them with its in-memory sessions.")]
        public static partial void EphemeralTokenKeyInMemory(ILogger logger, string setting);
    }
}
