using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Connections.Security;
using SessionGrains;
using SessionGrains.Silo;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Configures the standalone silo from the <c>SessionStore</c> configuration section.</summary>
public static class SiloHosting
{
    /// <summary>
    /// Adds an Orleans silo with the session grains. Without <c>SessionStore:Redis</c> or <c>SessionStore:Postgres</c>: localhost
    /// clustering, in-memory storage and reminders. With one: clustering, storage and reminders in that store, the Orleans
    /// ports on the advertised address. With <c>SessionStore:TlsCertificate</c>: mutual TLS on the Orleans ports.
    /// Invalid settings stop start-up, before anything listens, with a message naming the setting.
    /// </summary>
    public static WebApplicationBuilder AddSessionGrainsSilo(this WebApplicationBuilder builder)
    {
        var section = builder.Configuration.GetSection(SessionClusterOptions.SectionName);
        var services = builder.Services;
        services.AddValidatedOptions<SiloHostOptions, SiloHostOptionsValidator>(section, configure: null);
        services.AddValidatedOptions<SessionClusterOptions, SessionClusterOptionsValidator>(section, configure: null);
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<SiloHostOptions>>((kestrel, host) =>
        {
            kestrel.Limits.MaxRequestBodySize = host.Value.MaxRequestBodyBytes;
            kestrel.Limits.MaxRequestHeadersTotalSize = host.Value.MaxRequestHeadersBytes;
        });
        services.AddSingleton(sp =>
        {
            var host = sp.GetRequiredService<IOptions<SiloHostOptions>>().Value;
            return new FailedTokenLimiter(
                sp.GetRequiredService<SessionTokenCodec>(), host.FailedTokenChecksPerMinute, trustClientIp: host.RequiresApiKey,
                sp.GetService<TimeProvider>() ?? TimeProvider.System);
        });

        services.AddSingleton(sp => new FailedApiKeyLimiter(sp.GetService<TimeProvider>() ?? TimeProvider.System));

        // Clustering and ports are chosen now, from what IOptions will hold; validation at start reports bad values.
        var cluster = services.Registered<SessionClusterOptions>();
        var host = services.Registered<SiloHostOptions>();
        if (cluster.Redis is not null)
        {
            // Registered before the silo, so it runs (and fails clearly) before Orleans touches Redis.
            services.AddHostedService<RedisStartupCheck>();
        }

        if (cluster.Postgres is not null)
        {
            services.AddSingleton<SiloPostgres>(); // the readiness probe's connection (the schema is checked by AddSessionGrains)
        }

        builder.UseOrleans(silo =>
        {
            silo.Services.AddOptions<ClusterOptions>().Configure<IOptions<SessionClusterOptions>>((o, options) =>
            {
                o.ClusterId = options.Value.ClusterId;
                o.ServiceId = options.Value.ServiceId;
            });

            // Failure detection is Orleans' own (ClusterMembershipOptions); operators may tune it under
            // Orleans:Membership, e.g. Orleans__Membership__ProbeTimeout=00:00:02.
            silo.Configure<ClusterMembershipOptions>(builder.Configuration.GetSection("Orleans:Membership"));
            silo.Services.AddOptions<SiloMessagingOptions>().Configure<IOptions<SessionClusterOptions>>((o, options) => o.ResponseTimeout = options.Value.ResponseTimeout);

            if (cluster.Redis is not null || cluster.Postgres is not null)
            {
                if (cluster.Postgres is not null)
                {
                    silo.UseAdoNetClustering(optionsBuilder => optionsBuilder.Configure<IOptions<SessionClusterOptions>>((o, options) =>
                    {
                        o.Invariant = PostgresConfiguration.Invariant;
                        o.ConnectionString = PostgresConfiguration.ForProviders(options.Value.Postgres!);
                    }));
                }
                else
                {
                    silo.UseRedisClustering(_ => { });
                    silo.Services.AddOptions<Orleans.Clustering.Redis.RedisClusteringOptions>()
                        .Configure<IOptions<SessionClusterOptions>>((o, options) => o.ConfigurationOptions = options.Value.ParseRedis());
                }

                // The silo and gateway ports listen on the advertised (private) address only, unless the operator says otherwise.
                if (IPAddress.TryParse(host.AdvertisedAddress, out var address))
                {
                    silo.ConfigureEndpoints(address, host.SiloPort, cluster.GatewayPort, listenOnAnyHostAddress: host.ListenOnAnyAddress);
                }
                else
                {
                    silo.ConfigureEndpoints(host.SiloPort, cluster.GatewayPort, listenOnAnyHostAddress: host.ListenOnAnyAddress);
                }
            }
            else
            {
                silo.UseLocalhostClustering(host.SiloPort, cluster.GatewayPort, serviceId: cluster.ServiceId, clusterId: cluster.ClusterId);
            }

            if (ClusterTls.From(cluster) is { } tls)
            {
                // Mutual TLS on the silo and gateway ports: every peer, silo or client, shows a certificate the cluster trusts.
                silo.UseTls(options =>
                {
                    options.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
                    options.LocalServerCertificateSelector = (_, _) => tls.Certificate;
                    options.LocalClientCertificateSelector = (_, _, _, _, _) => tls.Certificate;
                    options.RemoteCertificateValidation = tls.IsTrusted;
                });
            }

            silo.AddSessionGrains(section);
            if (SiloTelemetry.ExportsOtlp(builder.Configuration))
            {
                silo.AddActivityPropagation(); // a trace follows calls from silo to silo
            }

            silo.AddSessionGrainsDashboard(host);
        });
        services.AddSessionStore(section);
        services.AddHostedService<SiloStartupLine>();

        // A grain that cannot activate because storage is out is logged three times by Orleans (category "Orleans.Grain"
        // exactly), after the storage's own line and before the caller's 503. Its other "Orleans.Grain…" categories
        // (the directory, references) keep Orleans' level.
        services.Configure<LoggerFilterOptions>(o => o.Rules.Add(new LoggerFilterRule(null, "Orleans.Grain", null,
            (_, category, level) => level >= (category == "Orleans.Grain" ? LogLevel.Critical : LogLevel.Warning))));
        return builder;
    }
}
