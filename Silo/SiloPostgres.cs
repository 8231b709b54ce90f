using System.Diagnostics;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Npgsql;

namespace SessionGrains.Silo;

/// <summary>The silo's own connection to PostgreSQL (beside Orleans' providers'): for its readiness probe.</summary>
internal sealed class SiloPostgres(IOptions<SessionClusterOptions> cluster) : IAsyncDisposable
{
    private readonly NpgsqlDataSource _database = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(cluster.Value.Postgres)
    {
        Timeout = (int)SiloHealth.StorageTimeout.TotalSeconds,
        CommandTimeout = (int)SiloHealth.StorageTimeout.TotalSeconds,
        MaxPoolSize = 2,
    });

    /// <summary>Healthy when PostgreSQL answers a query in time.</summary>
    public async Task<HealthCheckResult> CheckAsync(CancellationToken cancellationToken)
    {
        try
        {
            var started = Stopwatch.GetTimestamp();
            await using var command = _database.CreateCommand("SELECT 1");
            await command.ExecuteScalarAsync(cancellationToken).WaitAsync(SiloHealth.StorageTimeout, cancellationToken);
            return HealthCheckResult.Healthy($"PostgreSQL answered in {Stopwatch.GetElapsedTime(started).TotalMilliseconds:0.0} ms.");
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy("PostgreSQL storage is unreachable; a restart does not help, the silo reconnects by itself.");
        }
    }

    public ValueTask DisposeAsync() => _database.DisposeAsync();
}
