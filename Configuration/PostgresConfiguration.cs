using Npgsql;

namespace SessionGrains;

/// <summary>The <c>SessionStore:Postgres</c> setting: checked once at start, so a bad string stops start-up with its name.</summary>
internal static class PostgresConfiguration
{
    public const string PostgresSetting = SessionClusterOptions.SectionName + ":" + nameof(SessionClusterOptions.Postgres);

    /// <summary>What is wrong with <paramref name="connectionString"/>, without quoting it; null when Npgsql accepts it.</summary>
    public static string? Problem(string connectionString)
    {
        NpgsqlConnectionStringBuilder parsed;
        try
        {
            parsed = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException exception)
        {
            // Npgsql names the keyword it does not know, never the values.
            return exception.Message;
        }

        return string.IsNullOrWhiteSpace(parsed.Host) ? "it names no Host." : null;
    }

    /// <summary>Where a connection string points, for logs: host, port and database; never the user or password.</summary>
    public static string Describe(string connectionString)
    {
        var parsed = new NpgsqlConnectionStringBuilder(connectionString);
        return $"{parsed.Host}:{parsed.Port}/{parsed.Database ?? parsed.Username}";
    }
}
