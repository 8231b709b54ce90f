using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;

namespace SessionGrains.Tests;

/// <summary>Log event ids follow the table in <c>docs/event-ids.md</c>: one message per id, each in its assembly's range.</summary>
public sealed partial class EventIdTests
{
    [Fact]
    public void No_event_id_is_used_by_two_log_messages()
    {
        var duplicates = LogMessages()
            .GroupBy(m => m.EventId)
            .Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(m => m.Name))}")
            .ToList();

        Assert.Empty(duplicates);
    }

    [Fact]
    public void Every_event_id_lies_in_the_range_the_table_gives_its_assembly()
    {
        var ranges = Ranges();
        Assert.NotEmpty(ranges);

        var outside = LogMessages()
            .Where(m => !ranges.Any(r => r.Assembly == m.Assembly && m.EventId >= r.From && m.EventId <= r.To))
            .Select(m => $"{m.EventId} ({m.Name}, {m.Assembly})")
            .ToList();

        Assert.Empty(outside);
    }

    [Fact]
    public void The_scan_finds_the_log_messages_of_every_product_assembly()
    {
        var assemblies = LogMessages().Select(m => m.Assembly).ToHashSet();

        Assert.Contains("SessionGrains.Grains", assemblies);
        Assert.Contains("SessionGrains.Client", assemblies);
        Assert.Contains("SessionGrains.Silo", assemblies);
    }

    private sealed record class LogMessage(int EventId, string Name, string Assembly);

    private sealed record class EventIdRange(int From, int To, string Assembly);

    /// <summary>Every [LoggerMessage] of the product assemblies next to the tests (SessionGrains.*, not the tests themselves).</summary>
    private static List<LogMessage> LogMessages()
    {
        var testAssembly = typeof(EventIdTests).Assembly.GetName().Name;
        const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;
        return [.. Directory.GetFiles(AppContext.BaseDirectory, "SessionGrains.*.dll")
            .Select(Assembly.LoadFrom)
            .Where(a => a.GetName().Name != testAssembly)
            .SelectMany(LoadableTypes)
            .SelectMany(t => t.GetMethods(All))
            .Select(m => (Method: m, Attribute: m.GetCustomAttribute<LoggerMessageAttribute>()))
            .Where(m => m.Attribute is not null)
            .Select(m => new LogMessage(m.Attribute!.EventId, $"{m.Method.DeclaringType!.FullName}.{m.Method.Name}", m.Method.DeclaringType.Assembly.GetName().Name!))];
    }

    private static IEnumerable<Type> LoadableTypes(Assembly assembly)
    {
        try
        {
            return assembly.GetTypes();
        }
        catch (ReflectionTypeLoadException exception)
        {
            return exception.Types.OfType<Type>();
        }
    }

    private static List<EventIdRange> Ranges() =>
        [.. File.ReadLines(Path.Combine(RepositoryRoot(), "docs", "event-ids.md"))
            .Select(line => RangeRow().Match(line))
            .Where(match => match.Success)
            .Select(match => new EventIdRange(int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture), match.Groups[3].Value))];

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "docs", "event-ids.md")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("docs/event-ids.md was not found above the test output.");
    }

    [GeneratedRegex(@"^\|\s*(\d+)\s*[–-]\s*(\d+)\s*\|\s*([\w.]+)\s*\|")]
    private static partial Regex RangeRow();
}
