using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>How a test Redis is secured: a password for the default user, extra ACL commands, TLS.</summary>
public sealed record class RedisServerSettings(
    string? Password = null,
    IReadOnlyList<string>? AclSetUser = null,
    bool Tls = false);

/// <summary>
/// A real redis-server process on a free loopback port with its own temporary directory, started for the
/// test run and stopped (by process id) when it ends. Fails loudly when redis-server is not installed.
/// </summary>
public sealed class RedisServer : IAsyncLifetime
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
        System.IO.Directory.CreateDirectory(Directory);
        Port = FreePort();
        var start = new ProcessStartInfo(FindExecutable("redis-server"))
        {
            ArgumentList = { "--bind", "127.0.0.1", "--dir", Directory, "--save", "", "--appendonly", "no", "--protected-mode", "yes" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (_settings.Tls)
        {
            TestCertificates.WriteCaAndServer(Directory);
            foreach (var arg in new[] { "--port", "0", "--tls-port", Port.ToString(), "--tls-cert-file", Path.Combine(Directory, "server.crt"),
                "--tls-key-file", Path.Combine(Directory, "server.key"), "--tls-ca-cert-file", CaCertificatePath, "--tls-auth-clients", "no" })
            {
                start.ArgumentList.Add(arg);
            }
        }
        else
        {
            start.ArgumentList.Add("--port");
            start.ArgumentList.Add(Port.ToString());
        }

        if (_settings.Password is { } password)
        {
            start.ArgumentList.Add("--requirepass");
            start.ArgumentList.Add(password);
        }

        _process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start.");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Stop();

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

                _connection = await ConnectionMultiplexer.ConnectAsync(options);
                await _connection.GetDatabase().PingAsync();
                if (_settings.AclSetUser is { } acl)
                {
                    await _connection.GetDatabase().ExecuteAsync("ACL", ["SETUSER", .. acl]);
                }

                return;
            }
            catch (RedisConnectionException) when (DateTime.UtcNow < deadline && !_process.HasExited)
            {
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

    private void Stop()
    {
        try
        {
            if (_process is { HasExited: false })
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }

            if (System.IO.Directory.Exists(Directory))
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
        }
        catch (Exception exception) when (exception is InvalidOperationException or IOException)
        {
            // Already gone.
        }
    }

    /// <summary>A port that was free a moment ago on 127.0.0.1.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

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
