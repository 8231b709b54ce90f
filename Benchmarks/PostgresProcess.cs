using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace SessionGrains.Benchmarks;

/// <summary>
/// A private PostgreSQL server, the benchmark's and the tests' (their fixture wraps this one): <c>initdb</c> into a
/// temporary directory, a <c>postgres</c> process on a free loopback port with a password-only superuser, killed (by
/// process tree) and its directory deleted when disposed or when this process exits. Run as root, the server runs as
/// the <c>postgres</c> user, which PostgreSQL requires.
/// </summary>
internal sealed class PostgresProcess : IAsyncDisposable
{
    private const string User = "sessiongrains";

    // /proc/<pid>/stat counts CPU time in USER_HZ ticks, which Linux fixes at 100 a second for user space.
    private const double TicksPerSecond = 100;

    private const string InstallPattern = "/usr/lib/postgresql/*/bin/initdb=postgresql";

    private readonly string _password = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
    private Process? _process;

    private PostgresProcess(string directory, int port)
    {
        Directory = directory;
        Port = port;
    }

    public int Port { get; }

    /// <summary>The server's temporary directory (its data and socket), deleted when it stops.</summary>
    public string Directory { get; }

    /// <summary>The Npgsql connection string of the superuser, to the <c>postgres</c> database, unpooled.</summary>
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

    private static bool AsRoot => Environment.UserName == "root";

    /// <param name="installMissing">Install the Debian package first when it is missing, as <c>test.sh</c> does (the benchmark); otherwise fail saying what to install (the tests).</param>
    public static async Task<PostgresProcess> StartAsync(bool installMissing = false)
    {
        if (installMissing && FindBinDirectory() is null)
        {
            await RedisProcess.InstallMissingAsync(InstallPattern);
        }

        var bin = FindBinDirectory() ?? throw new InvalidOperationException(
            "PostgreSQL's initdb was not found under /usr/lib/postgresql/*/bin. A private PostgreSQL server is started here: " +
            "install the Debian package ('apt-get install postgresql'), or run ./test.sh, which installs it.");
        var server = new PostgresProcess(Path.Combine(Path.GetTempPath(), "sessiongrains-postgres-" + Guid.NewGuid().ToString("N")[..8]), RedisProcess.FreePort());
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop();
        try
        {
            System.IO.Directory.CreateDirectory(server.Directory);
            var passwordFile = Path.Combine(server.Directory, "password");
            await File.WriteAllTextAsync(passwordFile, server._password);
            if (AsRoot)
            {
                await RunAsync("chown", ["-R", "postgres:postgres", server.Directory]);
            }

            await RunAsync(Path.Combine(bin, "initdb"), ["-D", server.DataDirectory, "-U", User, "--pwfile", passwordFile, "--auth", "scram-sha-256", "-E", "UTF8", "--no-sync"], asPostgres: true);
            File.Delete(passwordFile);
            await server.RestartAsync();
            return server;
        }
        catch
        {
            server.Stop();
            throw;
        }
    }

    /// <summary>
    /// Starts the server (again, after <see cref="Kill"/>) on its data, crash recovery replaying the WAL, and port.
    /// 300 connections, not 100: Npgsql pools up to 100 a client, and a benchmark run has a pooled peer beside a cluster.
    /// </summary>
    public async Task RestartAsync()
    {
        _process = Start(Path.Combine(FindBinDirectory()!, "postgres"), ["-D", DataDirectory, "-p", Port.ToString(CultureInfo.InvariantCulture), "-c", "listen_addresses=127.0.0.1", "-c", $"unix_socket_directories={Directory}", "-c", "max_connections=300"]);
        await WaitReadyAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>kill -9 of the server and its backends: what a crash or an OOM kill does. Committed transactions survive (the WAL).</summary>
    public void Kill()
    {
        try
        {
            if (_process is { HasExited: false })
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    /// <summary>The server's processes: the postmaster and every backend or worker it has started.</summary>
    public IEnumerable<int> ProcessIds() => Descendants(_process!.Id).Prepend(_process.Id);

    /// <summary>
    /// CPU time (user and system) the server has used so far, from <c>/proc</c>: PostgreSQL runs a process per
    /// connection, so this is the postmaster's own time, its ended children's (<c>cutime</c> and <c>cstime</c>:
    /// backends it has reaped), and each live child's. Ticks of 10 ms: meaningful over many operations.
    /// </summary>
    public Task<double> CpuSecondsAsync()
    {
        var postmaster = Postmaster();
        var ticks = Ticks(postmaster, reapedChildren: true) + Descendants(postmaster).Sum(pid => Ticks(pid, reapedChildren: false));
        return Task.FromResult(ticks / TicksPerSecond);
    }

    /// <summary>Creates an empty database of its own for one user of the server (a cluster, a peer) and answers its connection string (pooled).</summary>
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

    public ValueTask DisposeAsync()
    {
        Stop();
        return ValueTask.CompletedTask;
    }

    /// <summary>The newest installed PostgreSQL's programs (Debian keeps them out of PATH); null when there is none.</summary>
    private static string? FindBinDirectory()
    {
        var installed = System.IO.Directory.Exists("/usr/lib/postgresql")
            ? System.IO.Directory.GetDirectories("/usr/lib/postgresql")
                .Where(d => File.Exists(Path.Combine(d, "bin", "initdb")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(d), out var version) ? version : 0)
                .FirstOrDefault()
            : null;
        return installed is null ? null : Path.Combine(installed, "bin");
    }

    // As root, the process started is runuser; the postmaster (its child) names itself in the data directory.
    private int Postmaster() =>
        int.Parse(File.ReadLines(Path.Combine(DataDirectory, "postmaster.pid")).First(), CultureInfo.InvariantCulture);

    /// <summary>utime + stime of <paramref name="pid"/>, with cutime + cstime when asked; 0 for a process that has ended.</summary>
    private static long Ticks(int pid, bool reapedChildren)
    {
        try
        {
            var fields = StatFields(File.ReadAllText($"/proc/{pid}/stat"));
            // Fields 14-17 of stat(5): utime, stime, cutime, cstime; StatFields starts at field 3.
            var own = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return reapedChildren ? own + long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture) : own;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    // pid (comm) state ppid ...: comm may hold spaces, so the fields are read after its closing parenthesis.
    private static string[] StatFields(string stat) => stat[(stat.LastIndexOf(')') + 2)..].Split(' ');

    private static IEnumerable<int> Descendants(int root)
    {
        var parents = new Dictionary<int, List<int>>();
        foreach (var stat in System.IO.Directory.EnumerateDirectories("/proc").Select(d => Path.Combine(d, "stat")))
        {
            try
            {
                var text = File.ReadAllText(stat);
                var pid = int.Parse(text[..text.IndexOf(' ')], CultureInfo.InvariantCulture);
                var ppid = int.Parse(StatFields(text)[1], CultureInfo.InvariantCulture);
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

    private void Stop()
    {
        Kill();
        try
        {
            if (System.IO.Directory.Exists(Directory))
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            // A file still held open by a process on its way out; the temporary directory's cleaner takes it later.
        }
    }
}
