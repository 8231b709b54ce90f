using System.Net;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using SessionGrains;
using SessionGrains.Silo;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Configures the standalone silo from the <c>SessionStore</c> configuration section.</summary>
public static class SiloHosting
{
    /// <summary>
    /// Adds an Orleans silo with the session grains. Without <c>SessionStore:Redis</c>: localhost
    /// clustering, in-memory storage and reminders. With it: Redis clustering, storage and reminders.
    /// Invalid settings fail here, before anything starts, with a message naming the setting.
    /// </summary>
    public static WebApplicationBuilder AddSessionGrainsSilo(this WebApplicationBuilder builder)
    {
        var section = builder.Configuration.GetSection(SessionGrainsOptions.SectionName);
        var host = section.Get<SiloHostOptions>() ?? new SiloHostOptions();
        var hostCheck = new SiloHostOptionsValidator().Validate(null, host);
        if (hostCheck.Failed)
        {
            throw new OptionsValidationException(SessionGrainsOptions.SectionName, typeof(SiloHostOptions), hostCheck.Failures);
        }

        builder.Services.AddSingleton(Options.Create(host));
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = host.MaxRequestBodyBytes;
            kestrel.Limits.MaxRequestHeadersTotalSize = host.MaxRequestHeadersBytes;
        });
        builder.Services.AddSingleton(sp => new FailedTokenLimiter(
            sp.GetRequiredService<SessionTokenCodec>(), host.FailedTokenChecksPerMinute, trustClientIp: host.ApiKey is not null,
            sp.GetService<TimeProvider>() ?? TimeProvider.System));

        var redis = host.Redis is { } configuration
            ? RedisConfiguration.Parse(configuration, $"{SessionGrainsOptions.SectionName}:Redis", host.RedisCaCertificate)
            : null;
        if (redis is not null)
        {
            // Registered before the silo, so it runs (and fails clearly) before Orleans touches Redis.
            builder.Services.AddHostedService(sp => new RedisStartupCheck(redis, sp.GetRequiredService<ILogger<RedisStartupCheck>>()));
        }

        builder.UseOrleans(silo =>
        {
            silo.Configure<ClusterOptions>(cluster =>
            {
                cluster.ClusterId = host.ClusterId;
                cluster.ServiceId = host.ServiceId;
            });

            // Failure detection is Orleans' own (ClusterMembershipOptions); operators may tune it under
            // Orleans:Membership, e.g. Orleans__Membership__ProbeTimeout=00:00:02.
            silo.Configure<ClusterMembershipOptions>(builder.Configuration.GetSection("Orleans:Membership"));
            silo.Configure<SiloMessagingOptions>(messaging => messaging.ResponseTimeout = host.ResponseTimeout);

            if (redis is not null)
            {
                silo.UseRedisClustering(o => o.ConfigurationOptions = redis.Clone());
                if (host.AdvertisedAddress is { } address)
                {
                    silo.ConfigureEndpoints(IPAddress.Parse(address), host.SiloPort, host.GatewayPort, listenOnAnyHostAddress: true);
                }
                else
                {
                    silo.ConfigureEndpoints(host.SiloPort, host.GatewayPort, listenOnAnyHostAddress: true);
                }
            }
            else
            {
                silo.UseLocalhostClustering(host.SiloPort, host.GatewayPort, serviceId: host.ServiceId, clusterId: host.ClusterId);
            }

            silo.AddSessionGrains(options => section.Bind(options));
        });
        builder.Services.AddSessionStore(store =>
        {
            store.TokenKeys = host.TokenKeys;
            store.RequireTokenKeys = host.Redis is not null;
        });
        return builder;
    }
}
