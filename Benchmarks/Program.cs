namespace SessionGrains.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project Benchmarks [-- --duration 5 --sessions 10000 --concurrency 64 --count-sessions 100000 | --smoke]</c>
/// </summary>
internal static class BenchmarkProgram
{
    public static Task<int> Main(string[] args) => BenchmarkRunner.MainAsync(args);
}
