using System.Diagnostics;
using Npgsql;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>
/// The relational deployment as it runs: the migrate command, then several processes of the Silo executable on one
/// PostgreSQL database and nothing else (clustering, storage and reminders there), reached from any silo.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class PostgresClusterTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Silo_processes_on_one_database_after_the_migrate_command_serve_every_session_from_any_silo()
    {
        await using var postgres = new PostgresServer();
        await postgres.InitializeAsync();
        var database = await postgres.CreateDatabaseAsync();
        var password = new NpgsqlConnectionStringBuilder(database).Password!;

        // Run on every deploy, from every silo at once: one creates the schema, the other finds it done.
        var runs = await Task.WhenAll(MigrateAsync(database), MigrateAsync(database));
        Assert.All(runs, run => Assert.Equal(0, run.ExitCode));
        Assert.Single(runs, run => run.Output.Contains("migrated from schema version 0 to 2", StringComparison.Ordinal));
        Assert.Single(runs, run => run.Output.Contains("already has schema version 2", StringComparison.Ordinal));
        Assert.All(runs, run => Assert.DoesNotContain(password, run.Output, StringComparison.Ordinal));

        await using var cluster = await LocalCluster.StartOnPostgresAsync(database, silos: 3);
        var started = Assert.Single(cluster.Silos[0].ReadLog(), e => e.EventId == 5002);
        Assert.Contains($"PostgreSQL at 127.0.0.1:{postgres.Port}/", string.Join(' ', started.Lines), StringComparison.Ordinal);
        Assert.All(cluster.Silos, silo => Assert.DoesNotContain(silo.ReadLog(), e => e.Lines.Any(line => line.Contains(password, StringComparison.Ordinal))));

        // Sessions created through the frontend's client are found through every silo's HTTP API: no sticky routing.
        var user = "pg-" + Guid.NewGuid().ToString("N")[..8];
        var sessions = new List<CreatedSession>();
        for (var i = 0; i < 6; i++)
        {
            sessions.Add(await cluster.Store.CreateAsync(user, cancellationToken: Ct));
        }

        foreach (var silo in cluster.Silos)
        {
            foreach (var session in sessions)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, "/sessions/current");
                request.Headers.Add("X-Session-Token", session.Token.Value);
                using var response = await silo.Http.SendAsync(request, Ct);
                Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
            }
        }

        Assert.Equal(6, (await cluster.Store.ListByUserAsync(user, cancellationToken: Ct)).Sessions.Length);
        Assert.True(await cluster.Store.DeleteAsync(sessions[0].Token.Value, Ct));
        Assert.Equal(5, await cluster.Store.CountForUserAsync(user, Ct));

        // The cluster is PostgreSQL's: three live silos in its membership table.
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync(Ct);
        await using var members = new NpgsqlCommand("SELECT count(*) FROM orleansmembershiptable WHERE status = 3", connection);
        Assert.Equal(3L, await members.ExecuteScalarAsync(Ct));
    }

    [Fact]
    public async Task The_migrate_command_without_a_database_says_what_to_set()
    {
        var run = await MigrateAsync(database: null);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("SessionStore__Postgres", run.Output, StringComparison.Ordinal);
    }

    private static async Task<(int ExitCode, string Output)> MigrateAsync(string? database)
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(LocalCluster.SiloProcess.SiloBinaryDirectory(), "SessionGrains.Silo.dll"), "migrate"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = LocalCluster.SiloProcess.SiloBinaryDirectory(),
        };
        start.Environment.Remove("SessionStore__Redis");
        start.Environment.Remove("SessionStore__Postgres");
        if (database is not null)
        {
            start.Environment["SessionStore__Postgres"] = database;
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(Ct);
        var error = process.StandardError.ReadToEndAsync(Ct);
        await process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromMinutes(1), Ct);
        return (process.ExitCode, await output + await error);
    }
}
