using System.Diagnostics;
using Npgsql;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>
/// A private PostgreSQL cluster for the tests: <c>initdb</c> into a temporary directory, a <c>postgres</c> process on a
/// free loopback port with a password-only superuser, killed (by process tree) and deleted when the test run ends on any
/// path. Run as root (CI), the server runs as the <c>postgres</c> user, which PostgreSQL requires. Fails loudly, saying
/// what to install, when the Debian <c>postgresql</c> package is missing.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime, IFaultyStore
{
    private const string User = "sessiongrains";

    private readonly string _password = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
    private Process? _process;

    public int Port { get; private set; }

    public string Directory { get; } = Path.Combine(Path.GetTempPath(), "sessiongrains-postgres-" + Guid.NewGuid().ToString("N")[..8]);

    /// <summary>The Npgsql connection string of the superuser, to the <c>postgres</c> database.</summary>
    public string ConnectionString => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Username = User,
        Password = _password,
        Database = "postgres",
        Pooling = false,
    }.ConnectionString;

    private string DataDirectory => Path.Combine(Directory, "data");

    public async ValueTask InitializeAsync()
    {
        var bin = BinDirectory();
        Port = RedisServer.FreePort();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Stop();
        System.IO.Directory.CreateDirectory(Directory);
        var passwordFile = Path.Combine(Directory, "password");
        await File.WriteAllTextAsync(passwordFile, _password);
        if (AsRoot)
        {
            await RunAsync("chown", ["-R", "postgres:postgres", Directory]);
        }

        await RunAsync(Path.Combine(bin, "initdb"), ["-D", DataDirectory, "-U", User, "--pwfile", passwordFile, "--auth", "scram-sha-256", "-E", "UTF8", "--no-sync"], asPostgres: true);
        File.Delete(passwordFile);

        await StartServerAsync();
    }

    private async Task StartServerAsync()
    {
        _process = Start(Path.Combine(BinDirectory(), "postgres"), ["-D", DataDirectory, "-p", Port.ToString(), "-c", "listen_addresses=127.0.0.1", "-c", $"unix_socket_directories={Directory}"]);
        await WaitReadyAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>kill -9 of the server and its backends: what a crash or an OOM kill does. Committed transactions survive (the WAL).</summary>
    public void Kill() => ChildProcesses.Kill(_process);

    /// <summary>Starts the server again on its data (crash recovery replays the WAL) and port.</summary>
    public Task RestartAsync() => StartServerAsync();

    /// <summary>SIGSTOP (or SIGCONT) to the server and every backend: connections stay open and nothing answers, as behind a dead link.</summary>
    public void Freeze(bool frozen)
    {
        foreach (var pid in Descendants(_process!.Id).Prepend(_process.Id))
        {
            _ = ChildProcesses.Signal(pid, frozen ? ChildProcesses.Pause : ChildProcesses.Resume);
        }
    }

    private static IEnumerable<int> Descendants(int root)
    {
        var parents = new Dictionary<int, List<int>>();
        foreach (var stat in System.IO.Directory.EnumerateDirectories("/proc").Select(d => Path.Combine(d, "stat")))
        {
            try
            {
                // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
                var text = File.ReadAllText(stat);
                var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
                var pid = int.Parse(text[..text.IndexOf(' ')], System.Globalization.CultureInfo.InvariantCulture);
                var ppid = int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture);
                (parents.TryGetValue(ppid, out var children) ? children : parents[ppid] = []).Add(pid);
            }
            catch (Exception exception) when (exception is IOException or FormatException or UnauthorizedAccessException)
            {
                // Not a process directory, or the process ended while we looked.
            }
        }

        var pending = new Stack<int>([root]);
        while (pending.TryPop(out var parent))
        {
            foreach (var child in parents.GetValueOrDefault(parent) ?? [])
            {
                yield return child;
                pending.Push(child);
            }
        }
    }

    public ValueTask DisposeAsync()
    {
        Stop();
        return ValueTask.CompletedTask;
    }

    /// <summary>Creates an empty database of its own for one cluster (as Redis clusters get a service id) and answers its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = "sessions_" + Guid.NewGuid().ToString("N")[..12];
        await using (var connection = await OpenAsync())
        {
            await using var command = connection.CreateCommand();
            command.CommandText = $"CREATE DATABASE {name}";
            await command.ExecuteNonQueryAsync();
        }

        return new NpgsqlConnectionStringBuilder(ConnectionString) { Database = name, Pooling = true }.ConnectionString;
    }

    /// <summary>A connection to the server (open), as the superuser.</summary>
    public async Task<NpgsqlConnection> OpenAsync()
    {
        var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    private static bool AsRoot => Environment.UserName == "root";

    /// <summary>The newest installed PostgreSQL's programs (Debian keeps them out of PATH), or an error that says what to install.</summary>
    internal static string BinDirectory()
    {
        var installed = System.IO.Directory.Exists("/usr/lib/postgresql")
            ? System.IO.Directory.GetDirectories("/usr/lib/postgresql")
                .Where(d => File.Exists(Path.Combine(d, "bin", "initdb")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(d), out var version) ? version : 0)
                .FirstOrDefault()
            : null;
        return installed is not null
            ? Path.Combine(installed, "bin")
            : throw new InvalidOperationException(
                "PostgreSQL's initdb was not found under /usr/lib/postgresql/*/bin. The tests start a private PostgreSQL server: " +
                "install the Debian package ('apt-get install postgresql'), or run ./test.sh, which installs it.");
    }

    private static Process Start(string program, IReadOnlyList<string> arguments)
    {
        var start = AsRoot ? new ProcessStartInfo("runuser", ["-u", "postgres", "--", program, .. arguments]) : new ProcessStartInfo(program, arguments);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        var process = Process.Start(start) ?? throw new InvalidOperationException($"{program} did not start.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static async Task RunAsync(string program, IReadOnlyList<string> arguments, bool asPostgres = false)
    {
        var start = asPostgres && AsRoot ? new ProcessStartInfo("runuser", ["-u", "postgres", "--", program, .. arguments]) : new ProcessStartInfo(program, arguments);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{program} did not start.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(program)} failed ({process.ExitCode}): {await error}{await output}");
        }
    }

    private async Task WaitReadyAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (_process is { HasExited: true })
            {
                throw new InvalidOperationException($"postgres exited with code {_process.ExitCode} on port {Port}.");
            }

            try
            {
                await using var connection = await OpenAsync();
                return;
            }
            catch (NpgsqlException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }

    private void Stop() => ChildProcesses.KillAndDelete(_process, Directory);
}
