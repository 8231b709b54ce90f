namespace SessionGrains.Benchmarks;

/// <summary>A kind of traffic, measured against every target that supports it.</summary>
/// <param name="IsValidation">Validations only, closed loop (the peers' read path).</param>
/// <param name="ForFrontends">Needs several frontends of one SessionGrains cluster (the revoke rows).</param>
internal sealed record class Workload(string Name, bool IsValidation = false, bool ForFrontends = false)
{
    public static readonly Workload ValidateUniform = new("validate, uniform", IsValidation: true);
    public static readonly Workload ValidateZipf = new("validate, Zipf-skewed", IsValidation: true);
    public static readonly Workload Mix = new("90% validate / 10% update");
    public static readonly Workload Create = new("create");
    public static readonly Workload ListByUser = new("list a user's 50 sessions");
    public static readonly Workload DeleteAllForUser = new("delete all of a user's 50 sessions");
    public static readonly Workload Count = new("count all sessions");

    /// <summary>Each session validated about once a second through 3 frontends behind round robin, at a fixed offered rate.</summary>
    public static readonly Workload Realistic = new("realistic: 3 frontends, every session once a second");

    /// <summary>A revoke of a session that 3 frontends have validated (hold), then a check that none accepts it.</summary>
    public static readonly Workload Revoke = new("revoke seen by 3 frontends", ForFrontends: true);

    /// <summary>The same with one of the 3 frontends frozen (SIGSTOP) while it holds the sessions: one burst of revokes, not rounds.</summary>
    public static readonly Workload RevokeFrozen = new("revoke seen by 3 frontends, one frozen", ForFrontends: true);

    public static IReadOnlyList<Workload> All { get; } = [ValidateUniform, ValidateZipf, Mix, Realistic, Revoke, RevokeFrozen, Create, ListByUser, DeleteAllForUser, Count];

    /// <summary>Validations are most of the traffic: the near cache's hit ratio means something.</summary>
    public bool Validates => IsValidation || this == Mix || this == Realistic;

    /// <summary>Measured on a population of sessions created and used once before.</summary>
    public bool NeedsPopulation => Validates;
}

/// <summary>Picks among n items with Zipf (s = 1) popularity: a few sessions are very hot, most are cold.</summary>
internal sealed class ZipfSampler
{
    private readonly double[] _cumulative;

    public ZipfSampler(int n)
    {
        _cumulative = new double[n];
        var sum = 0.0;
        for (var i = 0; i < n; i++)
        {
            sum += 1.0 / (i + 1);
            _cumulative[i] = sum;
        }

        for (var i = 0; i < n; i++)
        {
            _cumulative[i] /= sum;
        }
    }

    public int Next(Random random)
    {
        var index = Array.BinarySearch(_cumulative, random.NextDouble());
        return Math.Min(index < 0 ? ~index : index, _cumulative.Length - 1);
    }
}
