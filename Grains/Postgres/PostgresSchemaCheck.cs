using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace SessionGrains;

/// <summary>
/// The first thing a silo on PostgreSQL does: checks that the database has this release's schema, and stops start-up
/// with a message naming the migrate command when it does not. An unreachable database is waited for a while (it may
/// be starting too), then refused with a message naming the setting, never the connection string.
/// </summary>
internal sealed partial class PostgresSchemaCheck(IOptions<SessionClusterOptions> cluster, ILogger<PostgresSchemaCheck> logger)
    : ILifecycleParticipant<ISiloLifecycle>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(PostgresSchemaCheck), ServiceLifecycleStage.First, CheckAsync);

    private async Task CheckAsync(CancellationToken cancellationToken)
    {
        var connectionString = cluster.Value.Postgres ?? throw new InvalidOperationException($"{PostgresConfiguration.PostgresSetting} is not set.");
        await using var database = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(connectionString) { Timeout = 5, Pooling = false });
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            try
            {
                await PostgresSchema.EnsureCurrentAsync(database, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (Exception exception) when (IsUnreachable(exception) && DateTime.UtcNow < deadline)
            {
                Log.Waiting(logger, PostgresConfiguration.Describe(connectionString), exception.GetType().Name);
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception exception) when (exception is NpgsqlException or PostgresException)
            {
                // Npgsql's message can quote the server's answer; this one names the setting and the kind of failure.
                throw new InvalidOperationException(
                    $"{PostgresConfiguration.PostgresSetting}: cannot use PostgreSQL at {PostgresConfiguration.Describe(connectionString)} ({Describe(exception)}). Check the host, the database, the user and password, and SSL settings.");
            }
        }
    }

    /// <summary>A server not answering (yet), as opposed to one refusing us (a wrong password, no such database).</summary>
    internal static bool IsUnreachable(Exception exception) => exception switch
    {
        PostgresException postgres => postgres.SqlState is PostgresErrorCodes.CannotConnectNow or PostgresErrorCodes.AdminShutdown,
        NpgsqlException npgsql => npgsql.IsTransient,
        TimeoutException => true,
        _ => false,
    };

    private static string Describe(Exception exception) =>
        exception is PostgresException postgres ? $"{postgres.SqlState}: {postgres.MessageText}" : exception.GetType().Name;

    private static partial class Log
    {
        [LoggerMessage(6101, LogLevel.Warning, "PostgreSQL at {Database} does not answer yet ({Reason}); trying again in a second.")]
        public static partial void Waiting(ILogger logger, string database, string reason);
    }
}
