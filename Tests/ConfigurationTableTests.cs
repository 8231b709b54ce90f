using System.Globalization;
using System.Reflection;
using SessionGrains.Silo;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>
/// The configuration reference (docs/configuration.md, every setting), the README's short table (the common ones) and the
/// options classes cannot drift apart.
/// </summary>
public sealed class ConfigurationTableTests
{
    private static readonly Type[] OptionsClasses = [typeof(SessionClusterOptions), typeof(SessionStoreOptions), typeof(SessionGrainsOptions), typeof(SiloHostOptions)];

    private const string Reference = "docs/configuration.md";

    [Fact]
    public void Every_setting_of_the_options_classes_has_one_row_in_the_configuration_reference()
    {
        var rows = TableRows(Reference, heading: null);

        var missing = Settings().Keys.Except(rows.Select(row => row.Key)).ToList();

        Assert.True(missing.Count == 0, $"Settings missing from {Reference}: " + string.Join(", ", missing));
        var repeated = rows.GroupBy(row => row.Key).Where(group => group.Count() > 1).Select(group => group.Key).ToList();
        Assert.True(repeated.Count == 0, "Settings listed more than once: " + string.Join(", ", repeated));
    }

    [Theory]
    [InlineData(Reference, null)]
    [InlineData("README.md", "## Configuration")]
    public void Every_row_names_a_real_setting_its_class_and_its_default(string file, string? heading)
    {
        var settings = Settings();
        foreach (var row in TableRows(file, heading))
        {
            Assert.True(settings.TryGetValue(row.Key, out var setting), $"{file} lists {row.Key}, which no options class declares.");
            Assert.True(row.Owner == $"`{setting.Owner.Name}`", $"{row.Key} is declared by {setting.Owner.Name}; {file} says {row.Owner}.");
            if (setting.Default is { } value)
            {
                Assert.True(row.Default == $"`{Format(value)}`", $"{row.Key} defaults to {Format(value)}; {file} says {row.Default}.");
            }
        }
    }

    [Fact]
    public void The_readme_shows_the_settings_a_production_deployment_needs_and_links_the_reference()
    {
        var keys = TableRows("README.md", "## Configuration").Select(row => row.Key).ToList();

        Assert.Contains("SessionStore:Redis", keys);
        Assert.Contains("SessionStore:TokenKeys", keys);
        Assert.Contains("SessionStore:ApiKey", keys);
        Assert.Contains("(" + Reference + ")", File.ReadAllText(Path.Combine(RepositoryDirectory.Root, "README.md")), StringComparison.Ordinal);
    }

    [Fact]
    public void No_setting_is_declared_by_two_options_classes()
    {
        var declared = OptionsClasses.SelectMany(type => SettingsOf(type, SessionClusterOptions.SectionName, new Lazy<object>(() => Activator.CreateInstance(type)!)))
            .GroupBy(setting => setting.Key)
            .Where(group => group.Count() > 1)
            .Select(group => group.Key)
            .ToList();

        Assert.True(declared.Count == 0, "Declared twice: " + string.Join(", ", declared));
    }

    /// <summary>Every configuration key the options classes bind, with the class that declares it and its default.</summary>
    private static Dictionary<string, (Type Owner, object? Default)> Settings() =>
        OptionsClasses
            .SelectMany(type => SettingsOf(type, SessionClusterOptions.SectionName, new Lazy<object>(() => Activator.CreateInstance(type)!)))
            .ToDictionary(s => s.Key, s => (s.Owner, s.Default));

    private static IEnumerable<(string Key, Type Owner, object? Default)> SettingsOf(Type type, string prefix, Lazy<object> instance)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.SetMethod?.IsPublic == true))
        {
            var key = $"{prefix}:{property.Name}";
            var valueType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (valueType.IsPrimitive || valueType.IsEnum || valueType == typeof(string) || valueType == typeof(TimeSpan))
            {
                yield return (key, type, property.GetValue(instance.Value));
            }
            else if (valueType.Namespace == typeof(SessionClusterOptions).Namespace && valueType.Name.EndsWith("Options", StringComparison.Ordinal))
            {
                // Nested options (Signals) are a subsection: SessionStore:Signals:IpChange.
                foreach (var nested in SettingsOf(valueType, key, new Lazy<object>(() => property.GetValue(instance.Value)!)))
                {
                    yield return nested;
                }
            }

            // Anything else (the grains' TimeProvider) cannot come from configuration and is no setting.
        }
    }

    private static string Format(object value) => value switch
    {
        TimeSpan span => span.ToString("c", CultureInfo.InvariantCulture),
        bool flag => flag ? "true" : "false", // as written in configuration
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString()!,
    };

    /// <summary>The setting rows of a file's table (under <paramref name="heading"/> up to the next heading, or anywhere): key, class, default.</summary>
    private static List<(string Key, string Owner, string Default)> TableRows(string file, string? heading)
    {
        IEnumerable<string> lines = File.ReadAllLines(Path.Combine(RepositoryDirectory.Root, file));
        if (heading is not null)
        {
            Assert.Contains(heading, lines);
            lines = lines.SkipWhile(line => line != heading).Skip(1).TakeWhile(line => !line.StartsWith("## ", StringComparison.Ordinal));
        }

        var rows = lines
            .Where(line => line.StartsWith("| `" + SessionClusterOptions.SectionName, StringComparison.Ordinal))
            .Select(line => line.Split('|', StringSplitOptions.TrimEntries))
            .Select(cells => (Key: cells[1].Trim('`'), Owner: cells[2], Default: cells[3]))
            .ToList();
        Assert.NotEmpty(rows);
        return rows;
    }
}
