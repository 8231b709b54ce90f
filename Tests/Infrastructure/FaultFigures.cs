namespace SessionGrains.Tests.Infrastructure;

/// <summary>Where the fault scenarios report their figures: the test output and TestResults/fault-figures.md.</summary>
public static class FaultFigures
{
    private static readonly Lock Gate = new();

    public static void Record(string scenario, string figures)
    {
        var line = $"| {scenario} | {figures} |";
        TestContext.Current.TestOutputHelper?.WriteLine(line);
        lock (Gate)
        {
            var directory = Path.Combine(AppContext.BaseDirectory, "TestResults");
            Directory.CreateDirectory(directory);
            File.AppendAllText(Path.Combine(directory, "fault-figures.md"), $"{DateTime.UtcNow:u} {line}{Environment.NewLine}");
        }

        Console.WriteLine($"[fault figures] {scenario}: {figures}");
    }
}
