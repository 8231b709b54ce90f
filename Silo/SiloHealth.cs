using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Orleans.Clustering.Redis;
using Orleans.Configuration;
using Orleans.Runtime;
using StackExchange.Redis;

namespace SessionGrains.Silo;

/// <summary>
/// The silo's health endpoints, with the meanings supervisors give them. <c>/health/live</c> fails only when a
/// restart of this silo is the remedy: the cluster's membership table is gone from Redis (Orleans cannot rebuild it
/// under running silos), or the cluster declared this silo dead. <c>/health/ready</c> (and <c>/health</c>) also fails
/// while the silo cannot serve: not yet (or no longer) an active member, or Redis unreachable; a restart does not
/// cure that, and a liveness probe must not restart silos on a Redis blip. Each answers JSON naming every check.
/// </summary>
internal static class SiloHealth
{
    /// <summary>Tag of the checks whose failure a restart of this silo cures.</summary>
    public const string Live = "live";

    /// <summary>Tag of the checks that must pass for this silo to take requests.</summary>
    public const string Ready = "ready";

    public static IServiceCollection AddSiloHealthChecks(this IServiceCollection services)
    {
        services.AddSingleton<MembershipTableHealthCheck>(); // one instance, so a lost membership table is logged once
        services.AddSingleton<HealthTransitions>();
        services.AddHealthChecks()
            .AddCheck<ClusterMemberHealthCheck>("cluster-member", tags: [Ready])
            .AddCheck<StorageHealthCheck>("storage", tags: [Ready])
            .AddCheck<MembershipTableHealthCheck>("membership-table", tags: [Live, Ready]);
        return services;
    }

    public static void MapSiloHealth(this IEndpointRouteBuilder app)
    {
        Map(app, "/health/live", "Liveness", Live, "Fails only when restarting this silo is the remedy.");
        Map(app, "/health/ready", "Readiness", Ready, "Fails while this silo cannot serve requests.");
        Map(app, "/health", "Health", Ready, "The same as /health/ready.");
    }

    // Route handlers rather than MapHealthChecks, so the OpenAPI document describes them with the rest.
    private static void Map(IEndpointRouteBuilder app, string path, string name, string tag, string summary) =>
        app.MapGet(path, async (HealthCheckService health, HealthTransitions transitions, HttpContext http, CancellationToken ct) =>
            {
                var report = await health.CheckHealthAsync(check => check.Tags.Contains(tag), ct);
                transitions.Observe(tag, report);
                http.Response.Headers.CacheControl = "no-store";
                return Results.Json(
                    new HealthResponse(report.Status.ToString(), [.. report.Entries.Select(e => new HealthCheckResponse(e.Key, e.Value.Status.ToString(), e.Value.Description))]),
                    statusCode: report.Status == HealthStatus.Unhealthy ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK);
            })
            .WithName(name).WithSummary(summary).WithTags("Health")
            .Produces<HealthResponse>(StatusCodes.Status200OK)
            .Produces<HealthResponse>(StatusCodes.Status503ServiceUnavailable);

    /// <summary>The Redis connection, or null with in-memory storage.</summary>
    internal static RedisConnection? Redis(IServiceProvider services) => services.GetService<RedisConnection>();

    /// <summary>How long a check waits for Redis: a probe must answer in time even while Redis does not.</summary>
    internal static readonly TimeSpan StorageTimeout = TimeSpan.FromSeconds(2);
}

/// <summary>
/// One log line when a probe's answer changes (a warning naming the failing checks, then one when it passes again),
/// instead of an error line per probe: a supervisor probing every few seconds through an outage would bury the log.
/// ASP.NET Core's own line per failing check is turned off in appsettings.json for that reason.
/// </summary>
internal sealed partial class HealthTransitions(ILogger<HealthTransitions> logger)
{
    private readonly Dictionary<string, HealthStatus> _last = [];

    public void Observe(string probe, HealthReport report)
    {
        lock (_last)
        {
            var had = _last.TryGetValue(probe, out var last);
            if (had && last == report.Status || !had && report.Status == HealthStatus.Healthy)
            {
                _last[probe] = report.Status;
                return;
            }

            _last[probe] = report.Status;
        }

        if (report.Status == HealthStatus.Healthy)
        {
            Log.Passing(logger, probe);
        }
        else
        {
            var failing = report.Entries.Where(e => e.Value.Status != HealthStatus.Healthy).Select(e => $"{e.Key} ({e.Value.Description})");
            Log.Failing(logger, probe, report.Status, string.Join("; ", failing));
        }
    }

    private static partial class Log
    {
        [LoggerMessage(5111, LogLevel.Warning, "Health probe '{Probe}' is now {Status}: {Failing}")]
        public static partial void Failing(ILogger logger, string probe, HealthStatus status, string failing);

        [LoggerMessage(5112, LogLevel.Information, "Health probe '{Probe}' passes again.")]
        public static partial void Passing(ILogger logger, string probe);
    }
}

/// <summary>A health endpoint's answer: <c>{"status":"Unhealthy","checks":[{"name":"storage","status":"Unhealthy","description":"…"}]}</c>.</summary>
public sealed record class HealthResponse(string Status, IReadOnlyList<HealthCheckResponse> Checks);

/// <summary>One check of a <see cref="HealthResponse"/>.</summary>
public sealed record class HealthCheckResponse(string Name, string Status, string? Description);

/// <summary>Ready: this silo is an active member of its cluster.</summary>
internal sealed class ClusterMemberHealthCheck(IClusterMembershipService membership, ILocalSiloDetails silo) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var status = membership.CurrentSnapshot.GetSiloStatus(silo.SiloAddress);
        return Task.FromResult(status == SiloStatus.Active
            ? HealthCheckResult.Healthy("An active cluster member.")
            : HealthCheckResult.Unhealthy($"The silo is {status}, not an active cluster member."));
    }
}

/// <summary>Ready: the storage (Redis or PostgreSQL) answers (always, with in-memory storage).</summary>
internal sealed class StorageHealthCheck(IServiceProvider services) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (services.GetService<SiloPostgres>() is { } postgres)
        {
            return await postgres.CheckAsync(cancellationToken);
        }

        if (SiloHealth.Redis(services) is not { } redis)
        {
            return HealthCheckResult.Healthy("In-memory storage.");
        }

        try
        {
            var database = await redis.GetDatabaseAsync().WaitAsync(SiloHealth.StorageTimeout, cancellationToken);
            var latency = await database.PingAsync().WaitAsync(SiloHealth.StorageTimeout, cancellationToken);
            return HealthCheckResult.Healthy($"Redis answered in {latency.TotalMilliseconds:0.0} ms.");
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy("Redis storage is unreachable; a restart does not help, it reconnects by itself.");
        }
    }
}

/// <summary>
/// Live: the cluster's membership table is still in Redis, and the cluster has not declared this silo dead. A Redis
/// restarted empty (or flushed) loses that table; Orleans cannot rebuild it under running silos, so this check says so
/// once in the log and keeps failing until the silo is restarted, after which the cluster re-forms on a new table.
/// An unreachable Redis is not this check's failure: it cannot tell, and a restart would not help.
/// </summary>
internal sealed partial class MembershipTableHealthCheck(
    IClusterMembershipService membership,
    ILocalSiloDetails silo,
    IOptions<ClusterOptions> cluster,
    IServiceProvider services,
    ILogger<MembershipTableHealthCheck> logger) : IHealthCheck
{
    private int _membershipTableLost;

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (membership.CurrentSnapshot.GetSiloStatus(silo.SiloAddress) == SiloStatus.Dead)
        {
            return HealthCheckResult.Unhealthy("The cluster declared this silo dead: restart it.");
        }

        // Only Redis can lose the table under running silos (flushed, or restarted empty); PostgreSQL keeps its tables.
        if (SiloHealth.Redis(services) is not { } redis)
        {
            return HealthCheckResult.Healthy("The membership table is not in Redis.");
        }

        bool exists;
        try
        {
            var database = await redis.GetDatabaseAsync().WaitAsync(SiloHealth.StorageTimeout, cancellationToken);
            exists = await database.KeyExistsAsync(MembershipTableKey).WaitAsync(SiloHealth.StorageTimeout, cancellationToken);
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Healthy("Redis is unreachable, so the membership table was not checked (not a reason to restart).");
        }

        if (exists)
        {
            return HealthCheckResult.Healthy("The membership table is in Redis.");
        }

        if (Interlocked.Exchange(ref _membershipTableLost, 1) == 0)
        {
            Log.MembershipTableLost(logger);
        }

        return HealthCheckResult.Unhealthy("The cluster's membership table is gone from Redis (flushed or restarted empty): restart this silo.");
    }

    /// <summary>The key under which Orleans' Redis clustering keeps the membership table, made by Orleans' own key function.</summary>
    private RedisKey MembershipTableKey => services.GetRequiredService<IOptions<RedisClusteringOptions>>().Value.CreateRedisKey(cluster.Value);

    private static partial class Log
    {
        [LoggerMessage(5101, LogLevel.Critical, "The cluster's membership table is gone from Redis (it was flushed or restarted without its data). Running silos cannot rebuild it: restart every silo (a supervisor that restarts on a failing /health/live does it); the cluster re-forms on a new table. Sessions stored in that Redis are gone with it.")]
        public static partial void MembershipTableLost(ILogger logger);
    }
}
