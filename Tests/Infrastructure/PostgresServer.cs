using Npgsql;
using SessionGrains.Benchmarks;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>
/// A private PostgreSQL cluster for the tests: the benchmark's <see cref="PostgresProcess"/> (<c>initdb</c> into a
/// temporary directory, <c>postgres</c> on a free loopback port with a password-only superuser, killed and deleted when
/// the test run ends on any path), as an xunit fixture and a store the fault tests break. Fails loudly, saying what to
/// install, when the Debian <c>postgresql</c> package is missing.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime, IFaultyStore
{
    private PostgresProcess? _server;

    private PostgresProcess Server => _server ?? throw new InvalidOperationException("PostgreSQL is not started.");

    public int Port => Server.Port;

    public string Directory => Server.Directory;

    /// <summary>The Npgsql connection string of the superuser, to the <c>postgres</c> database.</summary>
    public string ConnectionString => Server.ConnectionString;

    public async ValueTask InitializeAsync() => _server = await PostgresProcess.StartAsync();

    /// <summary>kill -9 of the server and its backends: what a crash or an OOM kill does. Committed transactions survive (the WAL).</summary>
    public void Kill() => Server.Kill();

    /// <summary>Starts the server again on its data (crash recovery replays the WAL) and port.</summary>
    public Task RestartAsync() => Server.RestartAsync();

    /// <summary>SIGSTOP (or SIGCONT) to the server and every backend: connections stay open and nothing answers, as behind a dead link.</summary>
    public void Freeze(bool frozen)
    {
        foreach (var pid in Server.ProcessIds())
        {
            _ = ChildProcesses.Signal(pid, frozen ? ChildProcesses.Pause : ChildProcesses.Resume);
        }
    }

    public ValueTask DisposeAsync() => _server?.DisposeAsync() ?? ValueTask.CompletedTask;

    /// <summary>Creates an empty database of its own for one cluster (as Redis clusters get a service id) and answers its connection string.</summary>
    public Task<string> CreateDatabaseAsync() => Server.CreateDatabaseAsync();

    /// <summary>A connection to the server (open), as the superuser.</summary>
    public Task<NpgsqlConnection> OpenAsync() => Server.OpenAsync();
}
