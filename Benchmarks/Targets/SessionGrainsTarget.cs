using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Hosting;

namespace SessionGrains.Benchmarks;

/// <summary>
/// SessionGrains through <see cref="ISessionStore"/>, in its two deployments: a frontend with an Orleans
/// client talking to a separate silo process (<see cref="StartExternalAsync"/>), and a host app with the
/// silo in its own process (<see cref="StartCoHostedAsync"/>). Both keep state and reminders in Redis; the
/// external one can keep them in PostgreSQL instead (<see cref="ClusterStore"/>).
/// Each store is configured from a <c>SessionStore</c> section, as a deployed one is, with its near cache
/// switched on or off by <see cref="NearCacheSetting"/>.
/// </summary>
internal sealed class SessionGrainsTarget : ISessionTarget
{
    /// <summary>The near cache's switch in the <c>SessionStore</c> section (<c>SessionStoreOptions.NearCache.Enabled</c>).</summary>
    public const string NearCacheSetting = "NearCache:Enabled";

    private static readonly string TokenKeys = "bench:" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    private readonly IHost _host;
    private readonly IReadOnlyList<Process> _silos;
    private readonly NearCacheCounters _nearCache;
    private readonly (ClusterStore Store, string ServiceId)? _cluster;

    private SessionGrainsTarget(string name, IHost host, IReadOnlyList<Process> silos, (ClusterStore Store, string ServiceId)? cluster = null)
    {
        Name = name;
        _host = host;
        _silos = silos;
        _cluster = cluster;
        Store = host.Services.GetRequiredService<ISessionStore>();
        Grains = host.Services.GetRequiredService<IGrainFactory>();
        Tokens = host.Services.GetRequiredService<SessionTokenCodec>();
        _nearCache = new NearCacheCounters(host.Services);
    }

    public string Name { get; }

    public StoreServer Server => _cluster?.Store.Server ?? StoreServer.Redis;

    public ISessionStore Store { get; }

    /// <summary>The Orleans client (external) or the silo's grain factory (co-hosted) under the store.</summary>
    public IGrainFactory Grains { get; }

    /// <summary>The codec that made this target's tokens.</summary>
    public SessionTokenCodec Tokens { get; }

    public bool Supports(Workload workload) => !workload.ForFrontends && workload != Workload.Realistic && (_only?.Invoke(workload) ?? true);

    // Set for a row that measures only some workloads.
    private Func<Workload, bool>? _only;

    public NearCacheCounts? ReadNearCache() => _nearCache.Read();

    /// <summary>An Orleans client (the frontend) and <paramref name="silos"/> silo processes clustered through <paramref name="store"/> (on PostgreSQL: a migrated database).</summary>
    public static async Task<SessionGrainsTarget> StartExternalAsync(ClusterStore store, int silos = 1, bool nearCache = false)
    {
        var serviceId = $"bench-external-{silos}";
        var processes = new List<Process>();
        for (var i = 0; i < silos; i++)
        {
            processes.Add(await StartSiloAsync(store, serviceId));
        }

        return await StartClientAsync(ExternalName(store, silos, nearCache), store, serviceId, nearCache, processes);
    }

    /// <summary>The row name of an external client: "SessionGrains, external client, cache on"; "SessionGrains on PostgreSQL, ..." on PostgreSQL.</summary>
    public static string ExternalName(ClusterStore store, int silos, bool nearCache) =>
        (store.Server == StoreServer.PostgreSQL ? "SessionGrains on PostgreSQL" : "SessionGrains")
        + (silos == 1 ? ", external client" : $", external client, {silos} silos") + CacheSuffix(nearCache);

    /// <summary>Another frontend (its own host, Orleans client and store) of this external target's silos, which stay this target's.</summary>
    public Task<SessionGrainsTarget> StartFrontendAsync(string name, bool nearCache) =>
        _cluster is { } cluster ? StartClientAsync(name, cluster.Store, cluster.ServiceId, nearCache, silos: []) : throw new InvalidOperationException("Only an external target has silos to connect to.");

    /// <summary>The settings a frontend process of this external target's cluster needs, as environment variables.</summary>
    public IReadOnlyDictionary<string, string?> FrontendEnvironment(bool nearCache) =>
        _cluster is { } cluster
            ? FrontendSettings(cluster.Store, cluster.ServiceId, nearCache).ToDictionary(s => SessionClusterOptions.SectionName + "__" + s.Key.Replace(":", "__", StringComparison.Ordinal), s => s.Value)
            : throw new InvalidOperationException("Only an external target has silos to connect to.");

    public static string CacheSuffix(bool nearCache) => nearCache ? ", cache on" : ", cache off";

    private static async Task<SessionGrainsTarget> StartClientAsync(string name, ClusterStore store, string serviceId, bool nearCache, IReadOnlyList<Process> silos)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddSessionGrainsClient(Section(FrontendSettings(store, serviceId, nearCache)));
        var host = builder.Build();
        await host.StartAsync();
        return new SessionGrainsTarget(name, host, silos, (store, serviceId));
    }

    /// <summary>A frontend's <c>SessionStore</c> settings (keys relative to the section).</summary>
    private static Dictionary<string, string?> FrontendSettings(ClusterStore store, string serviceId, bool nearCache) => new(StringComparer.Ordinal)
    {
        [store.Setting] = store.ConnectionString,
        ["ServiceId"] = serviceId,
        ["ClusterId"] = serviceId,
        ["TokenKeys"] = TokenKeys,
        [NearCacheSetting] = nearCache.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>The <c>SessionStore</c> section holding <paramref name="settings"/>, and nothing from this process's environment.</summary>
    private static IConfigurationSection Section(Dictionary<string, string?> settings) =>
        new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => KeyValuePair.Create(SessionClusterOptions.SectionName + ":" + s.Key, s.Value)))
            .Build()
            .GetSection(SessionClusterOptions.SectionName);

    private static async Task<Process> StartSiloAsync(ClusterStore store, string serviceId)
    {
        var (siloPort, gatewayPort, httpPort) = (RedisProcess.FreePort(), RedisProcess.FreePort(), RedisProcess.FreePort());
        var directory = SiloDirectory();
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { Path.Combine(directory, "SessionGrains.Silo.dll"), "--urls", $"http://127.0.0.1:{httpPort}" },
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            Environment =
            {
                [SessionClusterOptions.SectionName + "__" + store.Setting] = store.ConnectionString,
                ["SessionStore__TokenKeys"] = TokenKeys,
                ["SessionStore__ServiceId"] = serviceId,
                ["SessionStore__ClusterId"] = serviceId,
                ["SessionStore__SiloPort"] = siloPort.ToString(),
                ["SessionStore__GatewayPort"] = gatewayPort.ToString(),
                ["SessionStore__AdvertisedAddress"] = "127.0.0.1",
                ["SessionStore__MaxSessionsPerUser"] = "1000",
                ["SessionStore__AllowOpenApi"] = "true", // loopback only
                ["Logging__LogLevel__Default"] = "Warning",
                ["ASPNETCORE_ENVIRONMENT"] = "Production",
            },
        };
        var silo = Process.Start(start)!;
        silo.OutputDataReceived += (_, _) => { };
        silo.ErrorDataReceived += (_, _) => { };
        silo.BeginOutputReadLine();
        silo.BeginErrorReadLine();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Stop(silo);
        await WaitHealthyAsync(silo, httpPort);
        return silo;
    }

    /// <param name="nearCache">The store's near cache on or off; null: the store's default (the scale run).</param>
    /// <param name="events">Session events on (the default) or off: off, the row measures only what events would cost (create, validate).</param>
    public static async Task<SessionGrainsTarget> StartCoHostedAsync(string redis, TimeSpan? idleDeactivation = null, bool? nearCache = null, Action<SessionGrainsOptions>? configure = null, bool events = true)
    {
        // Each co-hosted target is a cluster of its own (the cache-on one besides the cache-off one), with keys of its own.
        var serviceId = (nearCache == true ? "bench-cohosted-cache" : "bench-cohosted") + (events ? "" : "-no-events");
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(RedisProcess.FreePort(), RedisProcess.FreePort(), serviceId: serviceId, clusterId: serviceId)
                .AddSessionGrains(
                    o =>
                    {
                        o.MaxSessionsPerUser = 1000;
                        o.Events.Enabled = events;
                        o.IdleSessionDeactivation = idleDeactivation ?? o.IdleSessionDeactivation;
                        configure?.Invoke(o);
                    },
                    cluster => cluster.Redis = redis);
            if (idleDeactivation is not null)
            {
                silo.Configure<Orleans.Configuration.GrainCollectionOptions>(c => c.CollectionQuantum = TimeSpan.FromSeconds(1));
            }
        });
        var settings = new Dictionary<string, string?>(StringComparer.Ordinal) { ["TokenKeys"] = TokenKeys };
        if (nearCache is { } enabled)
        {
            settings[NearCacheSetting] = enabled.ToString(CultureInfo.InvariantCulture);
        }

        builder.Services.AddSessionStore(Section(settings));
        var host = builder.Build();
        await host.StartAsync();
        return new SessionGrainsTarget("SessionGrains, co-hosted" + (nearCache is { } on ? CacheSuffix(on) : "") + (events ? "" : ", events off"), host, silos: [])
        {
            _only = events ? null : workload => workload == Workload.Create || workload == Workload.ValidateUniform,
        };
    }

    public async Task<string> CreateAsync(string userId) => (await Store.CreateAsync(userId)).Token.Value;

    /// <summary>Session grains active in this process's silo (co-hosted only).</summary>
    public async Task<int> ActiveSessionGrainsAsync() => (await ActivationsAsync()).GetValueOrDefault("SessionGrain");

    /// <summary>Activations of SessionGrains' grain classes in this process's silo, by class name (co-hosted only).</summary>
    public async Task<Dictionary<string, int>> ActivationsAsync() =>
        (await Grains.GetGrain<Orleans.Runtime.IManagementGrain>(0).GetSimpleGrainStatistics())
            .Where(s => s.GrainType.StartsWith("SessionGrains.", StringComparison.Ordinal))
            .GroupBy(s => s.GrainType["SessionGrains.".Length..s.GrainType.IndexOf(',', StringComparison.Ordinal)])
            .ToDictionary(g => g.Key, g => g.Sum(s => s.ActivationCount));

    public async Task<bool> ValidateAsync(string handle) => await Store.ValidateAsync(handle) is not null;

    public Task<bool> DeleteAsync(string handle) => Store.DeleteAsync(handle);

    public Task UpdateAsync(string handle, int value) =>
        Store.UpdateAsync(handle, new SessionUpdate
        {
            Metadata = System.Collections.Immutable.ImmutableDictionary<string, string?>.Empty.Add("n", value.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        });

    public async Task<int> ListByUserAsync(string userId) => (await Store.ListByUserAsync(userId, 1000)).Sessions.Length;

    public Task<int> DeleteAllForUserAsync(string userId) => Store.DeleteAllForUserAsync(userId);

    public Task<long> CountAsync() => Store.CountAsync();

    public async Task StoreManyAsync(int count)
    {
        for (var start = 0; start < count; start += 500)
        {
            await Task.WhenAll(Enumerable.Range(start, Math.Min(500, count - start)).Select(i => Store.CreateAsync($"count-{i / 20}")));
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _host.StopAsync(TimeSpan.FromSeconds(10));
        }
        catch (OperationCanceledException)
        {
            // Stopping is best effort at the end of a run.
        }

        _host.Dispose();
        _nearCache.Dispose();
        foreach (var silo in _silos)
        {
            Stop(silo);
        }
    }

    private static async Task WaitHealthyAsync(Process silo, int httpPort)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && !silo.HasExited)
        {
            try
            {
                if ((await http.GetAsync($"http://127.0.0.1:{httpPort}/health")).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (Exception exception) when (exception is HttpRequestException or TaskCanceledException)
            {
                // Still starting.
            }

            await Task.Delay(200);
        }

        throw new InvalidOperationException("The silo process did not become healthy.");
    }

    private static void Stop(Process process)
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }
    }

    private static string SiloDirectory() => ProjectOutput("Silo", "SessionGrains.Silo.dll");

    /// <summary>A project's build next to this program: &lt;root&gt;/&lt;Project&gt;/bin/&lt;Configuration&gt;/&lt;tfm&gt; → &lt;root&gt;/<paramref name="project"/>/bin/...</summary>
    public static string ProjectOutput(string project, string assembly)
    {
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var directory = Path.Combine(output.Parent!.Parent!.Parent!.Parent!.FullName, project, "bin", output.Parent.Name, output.Name);
        return File.Exists(Path.Combine(directory, assembly))
            ? directory
            : throw new InvalidOperationException($"{assembly} was not found in {directory}: build the solution first.");
    }
}

/// <summary>
/// Where a SessionGrains cluster keeps its state: the <c>SessionStore</c> setting that names it (<c>Redis</c> or
/// <c>Postgres</c>) and its value, a connection string that may hold a password (so never printed, not even by <see cref="ToString"/>).
/// </summary>
internal sealed record class ClusterStore(StoreServer Server, string ConnectionString)
{
    public static ClusterStore Redis(string configuration) => new(StoreServer.Redis, configuration);

    /// <param name="connectionString">A database migrated with <see cref="PostgresSchema.MigrateAsync"/>.</param>
    public static ClusterStore Postgres(string connectionString) => new(StoreServer.PostgreSQL, connectionString);

    /// <summary>The setting's key in the <c>SessionStore</c> section.</summary>
    public string Setting => Server == StoreServer.PostgreSQL ? nameof(SessionClusterOptions.Postgres) : nameof(SessionClusterOptions.Redis);

    public override string ToString() => Server.ToString();
}
