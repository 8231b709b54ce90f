using System.Diagnostics;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>
/// A frontend as its own process (Tests/HistoryFrontend: an Orleans client with <see cref="ISessionStore"/> behind a
/// loopback HTTP route per store call), on the <see cref="LocalCluster"/>'s Redis and keys, so a test can pause it
/// (SIGSTOP), resume it or kill it like a real frontend. Stopped by process id on every exit path.
/// </summary>
public sealed class FrontendProcess : IAsyncDisposable
{
    private readonly LocalCluster _cluster;
    private readonly Dictionary<string, string> _environment;
    private Process? _process;
    private int _starts;

    /// <param name="environment">Extra settings (e.g. <c>SessionStore__NearCache__Enabled</c>), after the cluster's own.</param>
    public FrontendProcess(LocalCluster cluster, int index, IReadOnlyDictionary<string, string>? environment = null)
    {
        _cluster = cluster;
        Index = index;
        _environment = new Dictionary<string, string>(environment ?? new Dictionary<string, string>());
        Http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64, PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{HttpPort}"),
            Timeout = TimeSpan.FromSeconds(15),
        };
    }

    public int Index { get; }

    public int HttpPort { get; } = RedisServer.FreePort();

    /// <summary>Talks to this frontend's routes (bodies carry tokens: loopback only, never logged).</summary>
    public HttpClient Http { get; }

    public bool IsPaused { get; private set; }

    public async Task StartAsync()
    {
        var environment = new Dictionary<string, string>(_cluster.StoreEnvironment)
        {
            ["SessionStore__ServiceId"] = _cluster.ServiceId,
            ["SessionStore__ClusterId"] = _cluster.ServiceId,
            ["SessionStore__TokenKeys"] = _cluster.TokenKeys,
            ["SessionStore__ResponseTimeout"] = "00:00:05",
            ["Logging__LogLevel__Default"] = "Warning",
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["DOTNET_gcServer"] = "0",
        };
        foreach (var (key, value) in _environment)
        {
            environment[key] = value;
        }

        const string assembly = "SessionGrains.HistoryFrontend.dll";
        _process = ChildProcesses.StartDotnet(ChildProcesses.BuildOutput(Path.Combine("Tests", "HistoryFrontend"), assembly), assembly, HttpPort, environment,
            Path.Combine(_cluster.WorkDirectory, $"frontend{Index}-{++_starts}.log"));
        await WaitHealthyAsync(TimeSpan.FromSeconds(60));
    }

    /// <summary>SIGSTOP: the process keeps its connections and its memory, and answers nothing until <see cref="Resume"/>.</summary>
    public void Pause()
    {
        if (_process is { HasExited: false } process)
        {
            _ = ChildProcesses.Signal(process.Id, ChildProcesses.Pause);
            IsPaused = true;
        }
    }

    /// <summary>SIGCONT.</summary>
    public void Resume()
    {
        if (_process is { HasExited: false } process)
        {
            _ = ChildProcesses.Signal(process.Id, ChildProcesses.Resume);
        }

        IsPaused = false;
    }

    /// <summary>kill -9.</summary>
    public void Kill() => ChildProcesses.Kill(_process);

    private async Task WaitHealthyAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (_process is { HasExited: true })
            {
                throw new InvalidOperationException($"Frontend {Index} exited with code {_process.ExitCode}; see {_cluster.WorkDirectory}.");
            }

            try
            {
                using var response = await Http.GetAsync("/health");
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (Exception exception) when (exception is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet, or its Orleans client is still connecting.
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Frontend {Index} was not healthy within {timeout}.");
            }

            await Task.Delay(200);
        }
    }

    public ValueTask DisposeAsync()
    {
        if (IsPaused)
        {
            Resume();
        }

        Kill();
        Http.Dispose();
        return ValueTask.CompletedTask;
    }
}
