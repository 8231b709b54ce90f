using Microsoft.Extensions.Options;
using Npgsql;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>
/// What is PostgreSQL's own in the relational mode: the schema (migrate, and the silo's check of it), one store at a
/// time, and cleanup without a TTL (the expiry buckets delete the rows). The store-agnostic behaviour runs on
/// PostgreSQL through the parameterised test classes (<see cref="SessionLifecycleOnPostgres"/> and its siblings).
/// </summary>
[Collection(PostgresClusterCollection.Name)]
public sealed class PostgresModeTests(PostgresClusterFixture fixture, PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Migrate_from_several_processes_at_once_creates_the_schema_once_and_again_changes_nothing()
    {
        var database = await postgres.CreateDatabaseAsync();

        var found = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => PostgresSchema.MigrateAsync(database, Ct), Ct)));

        // One of them created it (found version 0); the others waited for its lock and found it done.
        Assert.Equal([0, 2, 2, 2], found.Order());
        Assert.Equal(PostgresSchema.CurrentVersion, await PostgresSchema.MigrateAsync(database, Ct));
        Assert.Equal(2L, await ScalarAsync<long>(database, "SELECT count(*) FROM sessiongrains_schema")); // a row per version applied
        Assert.Equal(20L, await ScalarAsync<long>(database, "SELECT count(*) FROM orleansquery"));
    }

    [Fact]
    public async Task A_silo_on_a_database_without_the_schema_stops_and_names_the_migrate_command()
    {
        var empty = await postgres.CreateDatabaseAsync();

        var failure = await Assert.ThrowsAnyAsync<Exception>(() => SessionCluster.StartAsync(redis: null, silos: 1, postgres: empty));

        var message = string.Join(" / ", Flatten(failure).Select(e => e.Message));
        Assert.Contains(PostgresSchema.MigrateCommand, message, StringComparison.Ordinal);
        Assert.Contains("SessionStore:Postgres", message, StringComparison.Ordinal);
        Assert.DoesNotContain(new NpgsqlConnectionStringBuilder(empty).Password!, message, StringComparison.Ordinal);
    }

    [Fact]
    public void Redis_and_postgres_both_set_is_a_start_up_error_naming_both_settings()
    {
        var options = new SessionClusterOptions { Redis = "127.0.0.1:1", Postgres = "Host=127.0.0.1;Password=s3cret-pw" };

        var result = new SessionClusterOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Contains("SessionStore:Postgres and SessionStore:Redis are both set", result.FailureMessage, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret-pw", result.FailureMessage, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Host=db;Password=s3cret-pw", 2)]
    [InlineData("Host=db;Password=s3cret-pw;Command Timeout=7", 7)]
    [InlineData("Host=db;Password=s3cret-pw;Command Timeout=0", 2)]
    public void The_grain_storage_gets_no_npgsql_command_timeout_but_a_deadline_of_the_operators_command_timeout(string connectionString, int deadlineSeconds)
    {
        // Npgsql cancels a timed-out query synchronously on a thread-pool thread; the storage stops waiting instead.
        var (storage, deadline) = PostgresConfiguration.ForGrainStorage(connectionString);

        var parsed = new NpgsqlConnectionStringBuilder(storage);
        Assert.Equal(0, parsed.CommandTimeout);
        Assert.Equal(TimeSpan.FromSeconds(deadlineSeconds), deadline);
        Assert.Equal("db", parsed.Host);
        Assert.Equal("s3cret-pw", parsed.Password);
        Assert.Equal(2, parsed.Timeout);

        // The silo in this process runs on PostgreSQL: it has threads for the cancellations Orleans' other providers cause.
        Assert.NotNull(fixture.Cluster);
        ThreadPool.GetMinThreads(out var workers, out _);
        Assert.True(workers >= SessionGrainsSiloBuilderExtensions.LeastWorkerThreadsOnPostgres, $"the thread pool's minimum is {workers} workers");
    }

    [Theory]
    [InlineData("Host=127.0.0.1;Nonsense=1;Password=s3cret-pw")]
    [InlineData("Database=sessions;Password=s3cret-pw")]
    public void A_bad_connection_string_is_refused_naming_the_setting_and_not_the_password(string connectionString)
    {
        var result = new SessionClusterOptionsValidator().Validate(null, new SessionClusterOptions { Postgres = connectionString });

        Assert.True(result.Failed);
        Assert.Contains("SessionStore:Postgres is not a usable Npgsql connection string", result.FailureMessage, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret-pw", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_expired_sessions_row_is_deleted_by_its_expiry_bucket_and_steady_churn_leaves_no_rows_behind()
    {
        // A cluster of its own: its clock moves here only.
        var database = await postgres.CreateDatabaseAsync();
        await PostgresSchema.MigrateAsync(database, Ct);
        await using var cluster = await SessionCluster.StartAsync(redis: null, silos: 1, postgres: database);
        var user = "churn-" + Guid.NewGuid().ToString("N")[..8];
        var keep = await cluster.Store.CreateAsync(user, cancellationToken: Ct);

        // Three rounds of twenty sessions that expire: each round's rows go before the next round's are counted.
        var expired = new List<string>();
        for (var round = 0; round < 3; round++)
        {
            var sessions = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ =>
                cluster.Store.CreateAsync(user + "-" + round, new SessionCreateOptions { IdleTimeout = TimeSpan.FromSeconds(2) }, Ct)));
            Assert.Equal(20L, await SessionRowsAsync(database, sessions.Select(s => s.Session.SessionId)));
            cluster.Time.Advance(TimeSpan.FromSeconds(3));
            await WaitAsync(async () => await SessionRowsAsync(database, sessions.Select(s => s.Session.SessionId)) == 0, TimeSpan.FromSeconds(30));
            expired.AddRange(sessions.Select(s => s.Session.SessionId));
        }

        Assert.Equal(0L, await SessionRowsAsync(database, expired));

        // Everything else they left goes too: their users' indexes, and the buckets that fired, with their pages. What
        // stays is the live session's: its row, its index, its bucket (due in 30 minutes), and the count.
        var firedBefore = cluster.Time.GetUtcNow().ToUnixTimeSeconds();
        const string Leftovers = """
            SELECT count(*) FROM orleansstorage
            WHERE (graintypestring = 'index' AND grainidextensionstring LIKE @churn)
               OR (graintypestring IN ('bucket', 'bucket-page') AND split_part(grainidextensionstring, '/', 1)::bigint <= @fired)
            """;
        await WaitAsync(async () => await ScalarAsync<long>(database, Leftovers, ("churn", user + "-%"), ("fired", firedBefore)) == 0, TimeSpan.FromSeconds(30));
        Assert.Equal(0L, await ScalarAsync<long>(database, Leftovers, ("churn", user + "-%"), ("fired", firedBefore)));
        Assert.Equal(0L, await ScalarAsync<long>(database, "SELECT count(*) FROM orleansstorage WHERE payloadbinary IS NULL"));
        Assert.NotNull(await cluster.Store.ValidateAsync(keep.Token.Value, cancellationToken: Ct));
        Assert.Equal(1L, await SessionRowsAsync(database, [keep.Session.SessionId]));
    }

    [Fact]
    public async Task The_hourly_sweep_ends_an_expired_session_its_bucket_never_heard_of_and_keeps_a_live_one()
    {
        // A cluster of its own: its clock moves here only, and its buckets are taken away.
        var database = await postgres.CreateDatabaseAsync();
        await PostgresSchema.MigrateAsync(database, Ct);
        await using var cluster = await SessionCluster.StartAsync(redis: null, silos: 1, postgres: database);
        const string SweepReminder = "SELECT count(*) FROM orleansreminderstable WHERE remindername = 'sweep' AND period = @period";
        await WaitAsync(async () => await ScalarAsync<long>(database, SweepReminder, ("period", (long)PostgresSweepGrain.Period.TotalMilliseconds)) == 1, TimeSpan.FromSeconds(10));
        Assert.Equal(1L, await ScalarAsync<long>(database, SweepReminder, ("period", (long)PostgresSweepGrain.Period.TotalMilliseconds)));

        var user = "orphan-" + Guid.NewGuid().ToString("N")[..8];
        var orphan = await cluster.Store.CreateAsync(user, new SessionCreateOptions { IdleTimeout = TimeSpan.FromSeconds(2) }, Ct);
        var live = await cluster.Store.CreateAsync(user, cancellationToken: Ct);

        // What a silo crash does to a bucket's last second of adds: the buckets (flushed on deactivation) and their
        // reminders are gone, so nothing will check the session.
        await WaitAsync(async () => await ScalarAsync<long>(database, "SELECT count(*) FROM orleansstorage WHERE graintypestring = 'bucket-page'") > 0, TimeSpan.FromSeconds(10));
        // Every bucket deactivated first (its flush done): one still active would hold the ids in memory.
        await WaitAsync(async () =>
        {
            await cluster.Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, Ct);
            return await cluster.ActivationsAsync(typeof(SessionExpiryBucketGrain)) == 0;
        }, TimeSpan.FromSeconds(20));
        Assert.Equal(0, await cluster.ActivationsAsync(typeof(SessionExpiryBucketGrain)));
        await ScalarAsync<long>(database, "WITH gone AS (DELETE FROM orleansstorage WHERE graintypestring IN ('bucket', 'bucket-page') RETURNING 1) SELECT count(*) FROM gone");
        await ScalarAsync<long>(database, "WITH gone AS (DELETE FROM orleansreminderstable WHERE remindername = 'due' RETURNING 1) SELECT count(*) FROM gone");
        cluster.Time.Advance(TimeSpan.FromSeconds(3));
        await Task.Delay(TimeSpan.FromSeconds(3), Ct);
        Assert.Equal(1L, await SessionRowsAsync(database, [orphan.Session.SessionId])); // an orphan: no bucket removed it

        var checkedRows = await cluster.Grains.GetGrain<IPostgresSweepGrain>(0).SweepAsync(TimeSpan.Zero);

        Assert.True(checkedRows >= 2, $"the sweep checked {checkedRows} rows");
        Assert.Equal(0L, await SessionRowsAsync(database, [orphan.Session.SessionId]));
        Assert.Null(await cluster.Store.ValidateAsync(orphan.Token.Value, cancellationToken: Ct));
        Assert.NotNull(await cluster.Store.ValidateAsync(live.Token.Value, cancellationToken: Ct));
        Assert.Equal(1L, await SessionRowsAsync(database, [live.Session.SessionId]));
        Assert.Equal([live.Session.SessionId], (await cluster.Store.ListByUserAsync(user, 10, cancellationToken: Ct)).Sessions.Select(s => s.SessionId));

        // The live session was filed in a bucket again: a bucket row names it, so its own expiry will be cleaned up.
        await WaitAsync(async () => await ScalarAsync<long>(database, "SELECT count(*) FROM orleansstorage WHERE graintypestring = 'bucket-page'") > 0, TimeSpan.FromSeconds(10));
        Assert.True(await ScalarAsync<long>(database, "SELECT count(*) FROM orleansstorage WHERE graintypestring = 'bucket-page'") > 0);
    }

    [Fact]
    public async Task The_shared_cluster_keeps_its_sessions_in_postgresql_and_no_token_in_any_row()
    {
        var created = await fixture.Cluster.Store.CreateAsync("rows-" + Guid.NewGuid().ToString("N")[..8], cancellationToken: Ct);

        Assert.Equal(1L, await SessionRowsAsync(fixture.Database, [created.Session.SessionId]));
        var token = created.Token.Value;
        Assert.Equal(0L, await ScalarAsync<long>(fixture.Database,
            "SELECT count(*) FROM orleansstorage WHERE position(convert_to(@token, 'UTF8') IN payloadbinary) > 0 OR position(@token IN coalesce(grainidextensionstring, '')) > 0",
            ("token", token)));
    }

    private static async Task<long> SessionRowsAsync(string database, IEnumerable<string> sessionIds) =>
        await ScalarAsync<long>(database, "SELECT count(*) FROM orleansstorage WHERE grainidextensionstring = ANY(@ids)", ("ids", sessionIds.ToArray()));

    private static async Task<T> ScalarAsync<T>(string database, string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        return (T)(await command.ExecuteScalarAsync(Ct))!;
    }

    private static async Task WaitAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200, Ct);
        }
    }

    private static IEnumerable<Exception> Flatten(Exception exception)
    {
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            yield return e;
            if (e is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions.SelectMany(Flatten))
                {
                    yield return inner;
                }
            }
        }
    }
}
