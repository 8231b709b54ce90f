using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;

namespace SessionGrains.Benchmarks;

/// <summary>A private redis-server on a free loopback port, without persistence, stopped by process id when disposed.</summary>
internal sealed class RedisProcess : IAsyncDisposable
{
    private static readonly string[] Candidates = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"];

    private readonly Process _process;
    private readonly string _directory;

    private RedisProcess(Process process, string directory, int port, ConnectionMultiplexer connection)
    {
        _process = process;
        _directory = directory;
        Port = port;
        Connection = connection;
    }

    public int Port { get; }

    public ConnectionMultiplexer Connection { get; }

    /// <summary>
    /// Connection options of the peers (seed design, RedisCache): Redis I/O on the thread pool, as SessionGrains
    /// does (see RedisConfiguration), so the run compares designs, not StackExchange.Redis socket schedulers.
    /// </summary>
    public static ConfigurationOptions PeerOptions(string configuration)
    {
        var options = ConfigurationOptions.Parse(configuration);
        options.SocketManager = SocketManager.ThreadPool;
        return options;
    }

    /// <summary>CPU time the server has used so far (user and system, all its threads), from <c>INFO cpu</c>.</summary>
    public async Task<double> CpuSecondsAsync()
    {
        var cpu = (await Connection.GetServers()[0].InfoAsync("cpu")).SelectMany(group => group).ToDictionary(p => p.Key, p => p.Value);
        return double.Parse(cpu["used_cpu_user"], CultureInfo.InvariantCulture) + double.Parse(cpu["used_cpu_sys"], CultureInfo.InvariantCulture);
    }

    public string ConfigurationString(int database = 0) => $"127.0.0.1:{Port},defaultDatabase={database}";

    public static async Task<RedisProcess> StartAsync()
    {
        var executable = Candidates.FirstOrDefault(File.Exists) ?? await InstallAsync();
        var directory = Directory.CreateTempSubdirectory("sessiongrains-bench-").FullName;
        var port = FreePort();
        var process = Process.Start(new ProcessStartInfo(executable)
        {
            ArgumentList = { "--port", port.ToString(), "--bind", "127.0.0.1", "--dir", directory, "--save", "", "--appendonly", "no" },
            RedirectStandardOutput = true,
            UseShellExecute = false,
        })!;
        process.OutputDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Kill(process);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                var connection = await ConnectionMultiplexer.ConnectAsync(PeerOptions($"127.0.0.1:{port},allowAdmin=true,connectTimeout=1000"));
                return new RedisProcess(process, directory, port, connection);
            }
            catch (RedisConnectionException) when (attempt < 50)
            {
                await Task.Delay(100);
            }
        }
    }

    private static async Task<string> InstallAsync()
    {
        var exitCode = await InstallMissingAsync("redis-server=redis-server");
        return Candidates.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException(
                $"redis-server was not found and could not be installed (exit code {exitCode}): install it with 'apt-get install redis-server'.");
    }

    /// <summary>
    /// Installs the Debian packages of the programs that are missing (<c>program=package</c>, as
    /// <c>scripts/install-missing.sh</c> takes them) with the script test.sh uses: the one thing a fresh machine lacks.
    /// </summary>
    public static async Task<int> InstallMissingAsync(string programAndPackage)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "install-missing.sh");
        using var install = Process.Start(new ProcessStartInfo("bash") { ArgumentList = { script, programAndPackage } })!;
        await install.WaitForExitAsync();
        return install.ExitCode;
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        await Connection.DisposeAsync();
        Kill(_process);
        Directory.Delete(_directory, recursive: true);
    }

    private static void Kill(Process process)
    {
        if (!process.HasExited)
        {
            process.Kill();
            process.WaitForExit(5000);
        }
    }
}
