using System.Globalization;

namespace SessionGrains.Benchmarks;

/// <summary>Command-line settings. Defaults keep a full run under 10 minutes on 2 cores.</summary>
internal sealed record class BenchmarkOptions
{
    /// <summary>Seconds each target runs each workload in one round.</summary>
    public double DurationSeconds { get; init; } = 3;

    /// <summary>Recorded rounds of each workload, after an unrecorded warm-up round (targets interleaved, order rotating); each row is a target's median round.</summary>
    public int Rounds { get; init; } = 3;

    /// <summary>Sessions the validate workloads pick from.</summary>
    public int Sessions { get; init; } = 10_000;

    /// <summary>Concurrent callers.</summary>
    public int Concurrency { get; init; } = 64;

    /// <summary>Sessions stored before the count workload.</summary>
    public int CountSessions { get; init; } = 100_000;

    /// <summary>Where the JSON and Markdown tables go.</summary>
    public string ResultsDirectory { get; init; } = Path.Combine(RepositoryRoot(), "Benchmarks", "results");

    /// <summary>Every workload for about a second, few sessions: keeps the harness working (run by the tests).</summary>
    public bool Smoke { get; init; }

    /// <summary>With a value: the scale run (memory per session, silo memory, reminder load, start time) for that many sessions instead of the table.</summary>
    public int? ScaleSessions { get; init; }

    /// <summary>Above 1: one more target, the external client on this many silo processes (1 → N silos in one run).</summary>
    public int Silos { get; init; } = 1;

    /// <summary>With a value: only the workloads whose name contains it (e.g. <c>create</c>), for working on one path.</summary>
    public string? Only { get; init; }

    /// <summary>Which co-hosted rows to measure: the store with its near cache on, off, or both (to decide the co-hosted default by measurement).</summary>
    public CacheRows CoHostedCache { get; init; } = CacheRows.Both;

    /// <summary>
    /// Unrecorded time each target runs the realistic workload before its rounds: with each session seen by a
    /// given frontend about every 3 seconds, this is what it takes for the frontends' caches to hold nearly all
    /// sessions, so the rounds measure the steady state rather than the cold start.
    /// </summary>
    public TimeSpan RealisticWarmUp { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Sessions held by the frozen frontend and revoked at once (at most <see cref="Sessions"/>).</summary>
    public int FrozenSessions => Math.Min(Sessions, 500);

    /// <summary>Concurrent callers of the revoke workload: revocations are rare, their latency is what counts, not a saturated queue.</summary>
    public const int RevokeCallers = 8;

    public bool Runs(Workload workload) => Only is null || workload.Name.Contains(Only, StringComparison.OrdinalIgnoreCase);

    public TimeSpan Duration => TimeSpan.FromSeconds(DurationSeconds);

    public static BenchmarkOptions Parse(IReadOnlyList<string> args)
    {
        var options = new BenchmarkOptions();
        for (var i = 0; i < args.Count; i++)
        {
            string Next() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            options = args[i] switch
            {
                "--duration" => options with { DurationSeconds = double.Parse(Next(), CultureInfo.InvariantCulture) },
                "--sessions" => options with { Sessions = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--rounds" => options with { Rounds = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--concurrency" => options with { Concurrency = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--count-sessions" => options with { CountSessions = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--results" => options with { ResultsDirectory = Next() },
                "--only" => options with { Only = Next() },
                "--silos" => options with { Silos = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--scale" => options with { ScaleSessions = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--co-hosted-cache" => options with { CoHostedCache = Enum.TryParse<CacheRows>(Next(), ignoreCase: true, out var rows) && Enum.IsDefined(rows) ? rows : throw new ArgumentException("--co-hosted-cache is on, off or both.") },
                "--realistic-warm-up" => options with { RealisticWarmUp = TimeSpan.FromSeconds(double.Parse(Next(), CultureInfo.InvariantCulture)) },
                "--smoke" => options with { Smoke = true, DurationSeconds = 0.2, Rounds = 2, Sessions = 200, Concurrency = 8, CountSessions = 500, RealisticWarmUp = TimeSpan.FromSeconds(0.5) },
                _ => throw new ArgumentException($"Unknown argument {args[i]}. Use --duration, --rounds, --sessions, --concurrency, --count-sessions, --results, --only, --silos N, --co-hosted-cache on|off|both, --realistic-warm-up S, --smoke or --scale N."),
            };
        }

        if (options.DurationSeconds is <= 0 or > 600 || options.Sessions is < 10 or > 1_000_000 || options.Concurrency is < 1 or > 1024 || options.CountSessions is < 10 or > 2_000_000 || options.Silos is < 1 or > 8 || options.Rounds is < 1 or > 20
            || options.RealisticWarmUp < TimeSpan.Zero || options.RealisticWarmUp > TimeSpan.FromSeconds(120))
        {
            throw new ArgumentException("Out of range: --duration 0-600 s, --rounds 1-20, --sessions 10-1,000,000, --concurrency 1-1024, --count-sessions 10-2,000,000, --silos 1-8, --realistic-warm-up 0-120 s.");
        }

        return options;
    }

    /// <summary>The directory that holds SessionGrains.sln, above this program.</summary>
    public static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "SessionGrains.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("SessionGrains.sln was not found above the benchmark's directory.");
    }
}

/// <summary>Which of a deployment's near-cache rows a run measures.</summary>
internal enum CacheRows
{
    Both,
    On,
    Off,
}
