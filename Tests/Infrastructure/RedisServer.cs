using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>How a test Redis is secured: a password for the default user, extra ACL commands, TLS.</summary>
public sealed record class RedisServerSettings(
    string? Password = null,
    IReadOnlyList<string>? AclSetUser = null,
    bool Tls = false,
    bool AppendOnly = false,
    IReadOnlyList<string>? ExtraArguments = null,
    IReadOnlyList<string>? SentinelConfiguration = null);

/// <summary>
/// A real redis-server process on a free loopback port with its own temporary directory, started for the
/// test run and stopped (by process id) when it ends. Fails loudly when redis-server is not installed.
/// </summary>
public sealed class RedisServer : IAsyncLifetime, IFaultyStore
{
    private readonly RedisServerSettings _settings;
    private Process? _process;
    private ConnectionMultiplexer? _connection;

    public RedisServer()
        : this(new RedisServerSettings())
    {
    }

    internal RedisServer(RedisServerSettings settings) => _settings = settings;

    public int Port { get; private set; }

    public string Directory { get; } = Path.Combine(Path.GetTempPath(), "sessiongrains-redis-" + Guid.NewGuid().ToString("N")[..8]);

    /// <summary>With TLS: the PEM file of the throwaway CA that signed the server's certificate.</summary>
    public string CaCertificatePath => Path.Combine(Directory, "ca.crt");

    /// <summary>StackExchange.Redis configuration string of this server, as the default user.</summary>
    public string ConnectionString =>
        $"127.0.0.1:{Port}" + (_settings.Password is { } password ? $",password={password}" : "") + (_settings.Tls ? ",ssl=true,sslHost=localhost" : "");

    public IDatabase Database => (_connection ?? throw new InvalidOperationException("Redis is not started.")).GetDatabase();

    public IServer Server => _connection!.GetServer("127.0.0.1", Port);

    public async ValueTask InitializeAsync()
    {
        Port = FreePort();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Stop();
        await StartProcessAsync();
    }

    /// <summary>Kills the server at once (SIGKILL): what the AOF fsynced survives, the rest is lost.</summary>
    public void Kill()
    {
        _connection?.Dispose();
        _connection = null;
        if (_process is { HasExited: false })
        {
            _process.Kill();
            _process.WaitForExit(5000);
        }
    }

    /// <summary>Starts the server again on the same port, with its data directory as it was or wiped.</summary>
    public async Task RestartAsync(bool wipeData = false)
    {
        Kill();
        if (wipeData)
        {
            foreach (var entry in System.IO.Directory.EnumerateFileSystemEntries(Directory).Where(e => !e.EndsWith(".crt", StringComparison.Ordinal) && !e.EndsWith(".key", StringComparison.Ordinal)))
            {
                if (System.IO.Directory.Exists(entry))
                {
                    System.IO.Directory.Delete(entry, recursive: true);
                }
                else
                {
                    File.Delete(entry);
                }
            }
        }

        await StartProcessAsync();
    }

    /// <summary>Freezes (SIGSTOP) or thaws (SIGCONT) the server: connections stay open but nothing answers, like a network partition.</summary>
    Task IFaultyStore.RestartAsync() => RestartAsync();

    public void Freeze(bool frozen) => _ = ChildProcesses.Signal(_process!.Id, frozen ? ChildProcesses.Pause : ChildProcesses.Resume);


    private async Task StartProcessAsync()
    {
        System.IO.Directory.CreateDirectory(Directory);
        var start = new ProcessStartInfo(FindExecutable("redis-server"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (_settings.SentinelConfiguration is { } sentinel)
        {
            // A sentinel rewrites its configuration file, so it gets one of its own.
            var file = Path.Combine(Directory, "sentinel.conf");
            if (!File.Exists(file))
            {
                await File.WriteAllLinesAsync(file, ["bind 127.0.0.1", $"port {Port}", $"dir {Directory}", .. sentinel]);
            }

            start.ArgumentList.Add(file);
            start.ArgumentList.Add("--sentinel");
        }

        foreach (var argument in new[] { "--bind", "127.0.0.1", "--dir", Directory, "--save", "", "--protected-mode", "yes",
                "--appendonly", _settings.AppendOnly ? "yes" : "no", "--appendfsync", "everysec" }.Where(_ => _settings.SentinelConfiguration is null))
        {
            start.ArgumentList.Add(argument);
        }

        if (_settings.Tls)
        {
            if (!File.Exists(CaCertificatePath))
            {
                TestCertificates.WriteCaAndServer(Directory);
            }

            foreach (var arg in new[] { "--port", "0", "--tls-port", Port.ToString(), "--tls-cert-file", Path.Combine(Directory, "server.crt"),
                "--tls-key-file", Path.Combine(Directory, "server.key"), "--tls-ca-cert-file", CaCertificatePath, "--tls-auth-clients", "no" })
            {
                start.ArgumentList.Add(arg);
            }
        }
        else if (_settings.SentinelConfiguration is null)
        {
            start.ArgumentList.Add("--port");
            start.ArgumentList.Add(Port.ToString());
        }

        if (_settings.Password is { } password)
        {
            start.ArgumentList.Add("--requirepass");
            start.ArgumentList.Add(password);
        }

        foreach (var argument in _settings.ExtraArguments ?? [])
        {
            start.ArgumentList.Add(argument);
        }

        _process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start.");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                var options = ConfigurationOptions.Parse($"{ConnectionString},connectTimeout=1000,allowAdmin=true");
                if (_settings.Tls)
                {
                    options.TrustIssuer(CaCertificatePath);
                }

                _connection = _settings.SentinelConfiguration is null
                    ? await ConnectionMultiplexer.ConnectAsync(options)
                    : await ConnectionMultiplexer.SentinelConnectAsync(options);
                await _connection.GetServers()[0].PingAsync();
                if (_settings.AclSetUser is { } acl)
                {
                    await _connection.GetDatabase().ExecuteAsync("ACL", ["SETUSER", .. acl]);
                }

                return;
            }
            catch (RedisException e) when (SessionGrains.Silo.RedisStartupCheck.IsStillStarting(e) && DateTime.UtcNow < deadline && !_process.HasExited)
            {
                // Restarted on its append-only file, the server accepts connections but answers
                // LOADING until the file is read back: still starting, not a failure.
                if (_connection is not null)
                {
                    await _connection.DisposeAsync();
                    _connection = null;
                }

                await Task.Delay(100);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }

        Stop();
    }

    private void Stop() => ChildProcesses.KillAndDelete(_process, Directory);

    /// <summary>A port that was free a moment ago on 127.0.0.1.</summary>
    public static int FreePort()
    {
        // The OS may hand the same just-released port to two calls in a row (a silo port equal to its gateway
        // port failed a CI run): no port is given out twice in one test run.
        while (true)
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            lock (GivenPorts)
            {
                if (GivenPorts.Add(port))
                {
                    return port;
                }
            }
        }
    }

    private static readonly HashSet<int> GivenPorts = [];

    /// <summary>The full path of a program on PATH (or /usr/sbin, /usr/bin), or an error that says what to install.</summary>
    public static string FindExecutable(string name)
    {
        var directories = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator).Concat(["/usr/bin", "/usr/sbin", "/usr/local/bin"]);
        return directories.Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException(
                $"'{name}' was not found. The tests start a real {name} process: install the Debian package " +
                $"('apt-get install redis-server'), or run ./test.sh, which installs it.");
    }
}
