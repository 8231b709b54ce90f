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

        // No Npgsql timeout or cancellation: Npgsql cancels a query synchronously, holding a thread while a database
        // that does not answer keeps it waiting. The probe stops waiting instead; its query ends when the database answers.
        CommandTimeout = 0,
        MaxPoolSize = 2,
    });

    /// <summary>Healthy when PostgreSQL answers a query in time.</summary>
    public async Task<HealthCheckResult> CheckAsync(CancellationToken cancellationToken)
    {
        try
        {
            var started = Stopwatch.GetTimestamp();
            await using var command = _database.CreateCommand("SELECT 1");
            await Abandon.AfterAsync(command.ExecuteScalarAsync(CancellationToken.None), SiloHealth.StorageTimeout, cancellationToken);
            return HealthCheckResult.Healthy($"PostgreSQL answered in {Stopwatch.GetElapsedTime(started).TotalMilliseconds:0.0} ms.");
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy("PostgreSQL storage is unreachable; a restart does not help, the silo reconnects by itself.");
        }
    }

    public ValueTask DisposeAsync() => _database.DisposeAsync();
}
