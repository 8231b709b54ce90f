namespace SessionGrains.Tests.Infrastructure;

/// <summary>A store server the fault tests break, the same way whichever it is: crash it, restart it on its data, freeze it.</summary>
public interface IFaultyStore : IAsyncDisposable
{
    /// <summary>kill -9: no last writes beyond what the store made durable.</summary>
    void Kill();

    /// <summary>Starts it again on its data, on the same port.</summary>
    Task RestartAsync();

    /// <summary>SIGSTOP (or SIGCONT): connections stay open and nothing answers.</summary>
    void Freeze(bool frozen);
}

/// <summary>The stores a cluster of silo processes can run on, started for one fault test each.</summary>
public static class FaultyStores
{
    public const string Redis = "redis";
    public const string Postgres = "postgres";

    /// <summary>A private server of <paramref name="store"/> (Redis with its append-only file; PostgreSQL migrated) and a cluster of silo processes on it.</summary>
    public static async Task<(IFaultyStore Store, LocalCluster Cluster)> StartAsync(string store, int silos, bool? batchValidations = null)
    {
        if (store == Redis)
        {
            var redis = new RedisServer(new RedisServerSettings(AppendOnly: true));
            await redis.InitializeAsync();
            return (redis, await StartOrDisposeAsync(redis, () => LocalCluster.StartAsync(redis.ConnectionString, silos, batchValidations)));
        }

        var postgres = new PostgresServer();
        await postgres.InitializeAsync();
        return (postgres, await StartOrDisposeAsync(postgres, async () =>
        {
            var database = await postgres.CreateDatabaseAsync();
            await PostgresSchema.MigrateAsync(database);
            return await LocalCluster.StartOnPostgresAsync(database, silos, batchValidations);
        }));
    }

    private static async Task<LocalCluster> StartOrDisposeAsync(IFaultyStore store, Func<Task<LocalCluster>> start)
    {
        try
        {
            return await start();
        }
        catch
        {
            await store.DisposeAsync();
            throw;
        }
    }
}
