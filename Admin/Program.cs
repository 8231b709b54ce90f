namespace SessionGrains.Admin;

internal static class Program
{
    private static Task<int> Main(string[] args) => AdminCommandLine.RunAsync(args, Console.Out, Console.Error);
}
