namespace SessionGrains.Admin;

internal static class Program
{
    private static Task<int> Main(string[] args) => AdminCommandLine.RunAsync(args, Console.In, Console.Out, Console.Error, errorIsTerminal: !Console.IsErrorRedirected);
}
