using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using SessionGrains;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers <see cref="ISessionStore"/> for frontends and host apps.</summary>
public static class SessionGrainsServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="ISessionStore"/> over the Orleans client or silo already in the container
    /// (a host app that calls <c>UseOrleans(silo => silo.AddSessionGrains())</c>, or a frontend that set up
    /// its own <c>UseOrleansClient</c>).
    /// </summary>
    public static IServiceCollection AddSessionStore(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton<ISessionStore>(sp => new SessionStore(sp.GetRequiredService<IGrainFactory>()));
        return services;
    }

    /// <summary>
    /// A frontend in one call: an Orleans client connected to the SessionGrains cluster (Redis clustering,
    /// or the local silo when <see cref="SessionGrainsClientOptions.Redis"/> is not set) and
    /// <see cref="ISessionStore"/> over it.
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
            if (options.Redis is { } redis)
            {
                var configuration = RedisConfiguration.Parse(redis, "SessionStore:Redis");
                client.UseRedisClustering(o => o.ConfigurationOptions = configuration);
            }
            else
            {
                client.UseLocalhostClustering(options.GatewayPort, options.ServiceId, options.ClusterId);
            }
        });
        return services.AddSessionStore();
    }
}
