namespace SessionGrains.Benchmarks;

/// <summary>A kind of traffic, measured against every target that supports it.</summary>
internal sealed record class Workload(string Name, bool IsValidation = false)
{
    public static readonly Workload ValidateUniform = new("validate, uniform", IsValidation: true);
    public static readonly Workload ValidateZipf = new("validate, Zipf-skewed", IsValidation: true);
    public static readonly Workload Mix = new("90% validate / 10% update");
    public static readonly Workload Create = new("create");
    public static readonly Workload ListByUser = new("list a user's 50 sessions");
    public static readonly Workload DeleteAllForUser = new("delete all of a user's 50 sessions");
    public static readonly Workload Count = new("count all sessions");

    public static IReadOnlyList<Workload> All { get; } = [ValidateUniform, ValidateZipf, Mix, Create, ListByUser, DeleteAllForUser, Count];
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
