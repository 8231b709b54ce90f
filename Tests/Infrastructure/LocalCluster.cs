using System.Diagnostics;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Runtime;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>
/// The process-level scenarios run one at a time, after the rest of the suite: they measure recovery times,
/// which mean little on two cores shared with other tests.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FaultCollection
{
    public const string Name = "faults";
}

/// <summary>
/// The production topology as local processes: N processes of the real Silo executable on one Redis or one
/// PostgreSQL database (clustering, storage, reminders), each with its own silo, gateway and HTTP port on 127.0.0.1, and an
/// Orleans client the way a frontend has one. Everything it starts it stops, by process id, on every exit
/// path (dispose, test-process exit).
/// </summary>
public sealed class LocalCluster : IAsyncDisposable
{
    private readonly List<SiloProcess> _silos = [];
    private IHost? _client;

    private LocalCluster(string? redisConfiguration, string? postgres, string workDirectory)
    {
        RedisConfiguration = redisConfiguration;
        Postgres = postgres;
        WorkDirectory = workDirectory;
    }

    /// <summary>What the silos get as <c>SessionStore__Redis</c> (a server, sentinels, or cluster nodes), or null on PostgreSQL.</summary>
    public string? RedisConfiguration { get; }

    /// <summary>What the silos get as <c>SessionStore__Postgres</c> (a migrated database), or null on Redis.</summary>
    public string? Postgres { get; }

    /// <summary>The store setting every silo and frontend of this cluster gets, as environment variables.</summary>
    public IEnumerable<KeyValuePair<string, string>> StoreEnvironment =>
        Postgres is not null ? [new("SessionStore__Postgres", Postgres)] : [new("SessionStore__Redis", RedisConfiguration!)];

    public string ServiceId { get; } = "local-" + Guid.NewGuid().ToString("N")[..8];

    public string TokenKeys { get; } = SiloApiFactory.TestTokenKeys;

    /// <summary>Where the silos' logs go (one file per silo start).</summary>
    public string WorkDirectory { get; }

    public IReadOnlyList<SiloProcess> Silos => _silos;

    /// <summary>An Orleans client on the cluster, as a frontend would have (retries included).</summary>
    public ISessionStore Store => _client!.Services.GetRequiredService<ISessionStore>();

    public IClusterClient Client => _client!.Services.GetRequiredService<IClusterClient>();

    /// <summary>Extra environment for every silo (e.g. faster failure detection).</summary>
    public Dictionary<string, string> Environment { get; } = new()
    {
        // Declare a killed silo dead in seconds, not the production default of tens of seconds.
        ["Orleans__Membership__ProbeTimeout"] = "00:00:01",
        ["Orleans__Membership__NumMissedProbesLimit"] = "2",
        ["Orleans__Membership__NumProbedSilos"] = "2",
        ["Orleans__Membership__NumVotesForDeathDeclaration"] = "1",
        ["Orleans__Membership__TableRefreshTimeout"] = "00:00:02",
        ["SessionStore__ResponseTimeout"] = "00:00:05",
        ["SessionStore__LeaseDuration"] = "00:00:02", // at most half the response timeout
        ["SessionStore__ExpiryBucketWidth"] = "00:00:01",
        ["Logging__LogLevel__Default"] = "Warning",
        ["Logging__LogLevel__SessionGrains.Silo.SiloStartupLine"] = "Information", // the one line of a start
        ["SessionStore__AllowOpenApi"] = "true", // the silos listen on loopback only
    };

    /// <summary>Extra settings of the frontend's client (e.g. its TLS certificate), after the cluster's own.</summary>
    public Action<SessionClusterOptions>? ClientSettings { get; set; }

    /// <param name="batchValidations">The frontend's <see cref="SessionStoreOptions.BatchValidations"/> (null: automatic, off with several silos).</param>
    /// <param name="prepare">Called before anything starts, to add to <see cref="Environment"/> and <see cref="ClientSettings"/>.</param>
    public static Task<LocalCluster> StartAsync(string redisConfiguration, int silos, bool? batchValidations = null, Action<LocalCluster>? prepare = null) =>
        StartAsync(new LocalCluster(redisConfiguration, postgres: null, Directory.CreateTempSubdirectory("sessiongrains-cluster-").FullName), silos, batchValidations, prepare);

    /// <summary>The same topology on a PostgreSQL database (already migrated).</summary>
    public static Task<LocalCluster> StartOnPostgresAsync(string database, int silos, bool? batchValidations = null, Action<LocalCluster>? prepare = null) =>
        StartAsync(new LocalCluster(redisConfiguration: null, database, Directory.CreateTempSubdirectory("sessiongrains-cluster-").FullName), silos, batchValidations, prepare);

    private static async Task<LocalCluster> StartAsync(LocalCluster cluster, int silos, bool? batchValidations, Action<LocalCluster>? prepare)
    {
        try
        {
            prepare?.Invoke(cluster);
            var starting = Enumerable.Range(0, silos).Select(i => new SiloProcess(cluster, i)).ToList();
            foreach (var silo in starting)
            {
                cluster._silos.Add(silo);
            }

            await Task.WhenAll(starting.Select(s => s.StartAsync()));

            await cluster.StartClientAsync(batchValidations);
            await cluster.WaitForActiveSilosAsync(silos, TimeSpan.FromSeconds(60));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts one more silo and waits until it answers /health.</summary>
    public async Task<SiloProcess> AddSiloAsync()
    {
        var silo = new SiloProcess(this, _silos.Count);
        _silos.Add(silo);
        await silo.StartAsync();
        return silo;
    }

    /// <summary>Waits until the cluster's membership lists exactly <paramref name="count"/> active silos.</summary>
    public async Task WaitForActiveSilosAsync(int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var management = Client.GetGrain<IManagementGrain>(0);
        while (true)
        {
            try
            {
                if ((await management.GetHosts(onlyActive: true)).Count == count)
                {
                    return;
                }
            }
            catch (Exception exception) when (exception is not OutOfMemoryException && DateTime.UtcNow < deadline)
            {
                // The silo holding the management grain may be the one that is going.
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"The cluster did not settle on {count} active silos within {timeout}.");
            }

            await Task.Delay(250);
        }
    }

    private async Task StartClientAsync(bool? batchValidations)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.AddTokenLogWatch();
        builder.Services.AddSessionGrainsClient(
            o =>
            {
                o.Redis = RedisConfiguration;
                o.Postgres = Postgres;
                o.ServiceId = ServiceId;
                o.ClusterId = ServiceId;
                o.ResponseTimeout = TimeSpan.FromSeconds(5);
                ClientSettings?.Invoke(o);
            },
            store =>
            {
                store.TokenKeys = TokenKeys;
                store.BatchValidations = batchValidations;
            });
        _client = builder.Build();
        await _client.StartAsync();
    }

    /// <summary>Every log line the silo processes wrote, checked for tokens like the in-process hosts' lines.</summary>
    public IEnumerable<string> SiloLogLines() =>
        Directory.EnumerateFiles(WorkDirectory, "*.log").SelectMany(File.ReadLines);

    public async ValueTask DisposeAsync()
    {
        if (_client is not null)
        {
            try
            {
                await _client.StopAsync(TimeSpan.FromSeconds(5));
            }
            catch (Exception exception) when (exception is OperationCanceledException or OrleansException)
            {
                // Stopping a client whose cluster is gone may time out; the process ends anyway.
            }

            _client.Dispose();
        }

        foreach (var silo in _silos)
        {
            silo.Kill();
        }

        foreach (var line in SiloLogLines())
        {
            TokenLogWatch.Inspect("silo process", line);
        }

        try
        {
            if (System.Environment.GetEnvironmentVariable("SESSIONGRAINS_KEEP_LOGS") is null)
            {
                Directory.Delete(WorkDirectory, recursive: true);
            }
        }
        catch (IOException)
        {
            // A log still open by a dying process; the temp directory is cleaned by the OS.
        }
    }

    /// <summary>One process of the real Silo executable.</summary>
    public sealed class SiloProcess
    {
        private readonly LocalCluster _cluster;
        private Process? _process;
        private int _starts;

        internal SiloProcess(LocalCluster cluster, int index)
        {
            _cluster = cluster;
            Index = index;
            Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{HttpPort}"), Timeout = TimeSpan.FromSeconds(10) };
        }

        public int Index { get; }

        public int SiloPort { get; } = RedisServer.FreePort();

        public int GatewayPort { get; } = RedisServer.FreePort();

        public int HttpPort { get; } = RedisServer.FreePort();

        /// <summary>Talks to this silo's HTTP API.</summary>
        public HttpClient Http { get; }

        public bool IsRunning => _process is { HasExited: false };

        public async Task StartAsync()
        {
            var environment = new Dictionary<string, string>(_cluster.Environment.Concat(_cluster.StoreEnvironment))
            {
                ["SessionStore__ServiceId"] = _cluster.ServiceId,
                ["SessionStore__ClusterId"] = _cluster.ServiceId,
                ["SessionStore__TokenKeys"] = _cluster.TokenKeys,
                ["SessionStore__SiloPort"] = SiloPort.ToString(),
                ["SessionStore__GatewayPort"] = GatewayPort.ToString(),
                ["SessionStore__AdvertisedAddress"] = "127.0.0.1",
                ["ASPNETCORE_ENVIRONMENT"] = "Production",
                ["DOTNET_gcServer"] = "0",
            };
            _process = ChildProcesses.StartDotnet(SiloBinaryDirectory(), "SessionGrains.Silo.dll", HttpPort, environment,
                Path.Combine(_cluster.WorkDirectory, $"silo{Index}-{++_starts}.log"));
            await WaitHealthyAsync(TimeSpan.FromSeconds(60));
        }

        /// <summary>kill -9: no goodbye to the cluster, no last writes.</summary>
        public void Kill() => ChildProcesses.Kill(_process);

        /// <summary>A graceful stop (SIGTERM): the silo leaves the cluster and deactivates its grains.</summary>
        public async Task StopAsync()
        {
            if (_process is { HasExited: false } process)
            {
                _ = ChildProcesses.Signal(process.Id, ChildProcesses.Terminate);
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                try
                {
                    await process.WaitForExitAsync(timeout.Token);
                }
                catch (OperationCanceledException)
                {
                    ChildProcesses.Kill(process);
                }
            }
        }

        /// <summary>
        /// The entries of this silo's current log (the console format: <c>warn: Category[EventId]</c>, then the message
        /// and any stack indented below it), with their lines.
        /// </summary>
        public IReadOnlyList<SiloLogEntry> ReadLog()
        {
            var entries = new List<SiloLogEntry>();
            using var stream = new FileStream(Path.Combine(_cluster.WorkDirectory, $"silo{Index}-{_starts}.log"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            while (reader.ReadLine() is { } line)
            {
                var header = System.Text.RegularExpressions.Regex.Match(line, @"^(trce|dbug|info|warn|fail|crit): (.+)\[(-?\d+)\]$");
                if (header.Success)
                {
                    entries.Add(new SiloLogEntry(header.Groups[1].Value, header.Groups[2].Value, int.Parse(header.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture), []));
                }
                else if (entries.Count > 0)
                {
                    entries[^1].Lines.Add(line);
                }
            }

            return entries;
        }

        public async Task WaitHealthyAsync(TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (true)
            {
                if (_process is { HasExited: true })
                {
                    throw new InvalidOperationException($"Silo {Index} exited with code {_process.ExitCode}; see {_cluster.WorkDirectory}.");
                }

                try
                {
                    using var response = await Http.GetAsync("/health");
                    if (response.IsSuccessStatusCode)
                    {
                        return;
                    }
                }
                catch (HttpRequestException)
                {
                    // Not listening yet.
                }
                catch (TaskCanceledException)
                {
                    // Busy starting.
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"Silo {Index} was not healthy within {timeout}.");
                }

                await Task.Delay(200);
            }
        }

        internal static string SiloBinaryDirectory() => ChildProcesses.BuildOutput("Silo", "SessionGrains.Silo.dll");
    }
}

/// <summary>One entry of a silo process's log: its level (<c>warn</c>, <c>fail</c>...), category, event id and the lines below its header.</summary>
public sealed record class SiloLogEntry(string Level, string Category, int EventId, List<string> Lines)
{
    public bool HasStackTrace => Lines.Any(l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
}
