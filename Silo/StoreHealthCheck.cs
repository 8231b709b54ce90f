using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Orleans.Clustering.Redis;
using Orleans.Configuration;
using Orleans.Runtime;
using StackExchange.Redis;

namespace SessionGrains.Silo;

/// <summary>
/// Healthy when this silo is an active cluster member, its storage answers (Redis PING), and the cluster's
/// membership table is still in Redis. A Redis restarted empty (or flushed) loses that table; Orleans cannot
/// rebuild it under running silos, so this check says so once in the log and keeps /health at 503 until
/// the silo is restarted (by hand or by its supervisor), after which the cluster re-forms on a new table.
/// </summary>
internal sealed partial class StoreHealthCheck(
    IClusterMembershipService membership,
    ILocalSiloDetails silo,
    IOptions<ClusterOptions> cluster,
    IOptions<RedisClusteringOptions> clustering,
    ILogger<StoreHealthCheck> logger,
    IServiceProvider services) : IHealthCheck
{
    private static readonly TimeSpan StorageTimeout = TimeSpan.FromSeconds(2);
    private int _membershipTableLost;

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var status = membership.CurrentSnapshot.GetSiloStatus(silo.SiloAddress);
        if (status != SiloStatus.Active)
        {
            return HealthCheckResult.Unhealthy($"The silo is {status}, not an active cluster member.");
        }

        if (services.GetService<RedisConnection>() is not { } redis)
        {
            return HealthCheckResult.Healthy("In-memory storage.");
        }

        try
        {
            var database = await redis.GetDatabaseAsync().WaitAsync(StorageTimeout, cancellationToken);
            var latency = await database.PingAsync().WaitAsync(StorageTimeout, cancellationToken);
            if (!await database.KeyExistsAsync(MembershipTableKey).WaitAsync(StorageTimeout, cancellationToken))
            {
                if (Interlocked.Exchange(ref _membershipTableLost, 1) == 0)
                {
                    Log.MembershipTableLost(logger);
                }

                return HealthCheckResult.Unhealthy("The cluster's membership table is gone from Redis (flushed or restarted empty): restart this silo.");
            }

            return HealthCheckResult.Healthy($"Redis answered in {latency.TotalMilliseconds:0.0} ms.");
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy("Redis storage is unreachable.");
        }
    }

    /// <summary>The key under which Orleans' Redis clustering keeps the membership table, made by Orleans' own key function.</summary>
    private RedisKey MembershipTableKey => clustering.Value.CreateRedisKey(cluster.Value);

    private static partial class Log
    {
        [LoggerMessage(5101, LogLevel.Critical, "The cluster's membership table is gone from Redis (it was flushed or restarted without its data). Running silos cannot rebuild it: restart every silo (a supervisor that restarts on a failing /health does it); the cluster re-forms on a new table. Sessions stored in that Redis are gone with it.")]
        public static partial void MembershipTableLost(ILogger logger);
    }
}
