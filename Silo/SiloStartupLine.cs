using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace SessionGrains.Silo;

/// <summary>
/// One line once the silo serves: the mode it runs in, where it listens, and what to try next. Redis is named by its
/// endpoints only: the configuration string may hold a password.
/// </summary>
internal sealed partial class SiloStartupLine(
    IHostApplicationLifetime lifetime,
    IServer server,
    ILocalSiloDetails silo,
    IOptions<SessionClusterOptions> cluster,
    IOptions<SiloHostOptions> host,
    ILogger<SiloStartupLine> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStarted.Register(() => Log.Started(logger, Describe()));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    internal string Describe()
    {
        var http = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? "(no HTTP address)";
        var options = cluster.Value;
        var where = $"HTTP {http}; silo {silo.SiloAddress.Endpoint}, gateway port {options.GatewayPort}; cluster '{options.ClusterId}'";
        if (!options.HasSharedStore)
        {
            return $"embedded default (localhost clustering, in-memory storage: sessions end with this process); {where}. "
                + $"Try: curl -X POST {http}/sessions -H 'content-type: application/json' -d '{{\"userId\":\"alice\"}}' (docs/http-api.md); "
                + "set SessionStore__Redis or SessionStore__Postgres to keep sessions and cluster silos.";
        }

        var store = options.Postgres is { } postgres
            ? $"PostgreSQL at {PostgresConfiguration.Describe(postgres)}"
            : $"Redis at {string.Join(", ", options.ParseRedis()?.EndPoints.Select(e => e.ToString()) ?? [])}";
        var key = host.Value.RequiresApiKey ? "the API key required" : "NO API key (AllowOpenApi)";
        return $"{store} (clustering, storage, reminders); {where}; {key}. "
            + $"Readiness: {http}/health/ready; the API: {http}/openapi/v1.json.";
    }

    private static partial class Log
    {
        [LoggerMessage(5002, LogLevel.Information, "SessionGrains silo started: {Description}")]
        public static partial void Started(ILogger logger, string description);
    }
}
