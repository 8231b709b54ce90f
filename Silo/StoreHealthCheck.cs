using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace SessionGrains.Silo;

/// <summary>Healthy when this silo is an active cluster member and its storage answers (Redis PING).</summary>
internal sealed class StoreHealthCheck(
    IClusterMembershipService membership,
    ILocalSiloDetails silo,
    IServiceProvider services) : IHealthCheck
{
    private static readonly TimeSpan StorageTimeout = TimeSpan.FromSeconds(2);

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
            return HealthCheckResult.Healthy($"Redis answered in {latency.TotalMilliseconds:0.0} ms.");
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy("Redis storage is unreachable.");
        }
    }
}
