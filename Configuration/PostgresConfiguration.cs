using Npgsql;

namespace SessionGrains;

/// <summary>The <c>SessionStore:Postgres</c> setting: checked once at start, so a bad string stops start-up with its name.</summary>
internal static class PostgresConfiguration
{
    public const string PostgresSetting = SessionClusterOptions.SectionName + ":" + nameof(SessionClusterOptions.Postgres);

    /// <summary>The ADO.NET invariant of Npgsql, by which Orleans' providers (clustering, storage, reminders) load it.</summary>
    public const string Invariant = "Npgsql";

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

    // Npgsql waits 15 s to connect and 30 s for a command, then 2 s more for the server to confirm a cancellation;
    // Orleans gives a call 10 s. A session store should fail a request fast when its database is away (a 503 the
    // caller can retry), as it does on Redis (2 s): every query here touches one row or one reminder range.
    private const int DefaultTimeoutSeconds = 2;
    private const int DefaultCancellationTimeoutMilliseconds = 500;

    /// <summary>
    /// The connection string Orleans' providers get: the operator's, with connect and command timeouts of
    /// <see cref="DefaultTimeoutSeconds"/> and a short wait for a timed-out query's cancellation, unless it sets its own.
    /// </summary>
    public static string ForProviders(string connectionString)
    {
        // What the operator wrote (Npgsql's own builder answers every keyword it knows as present).
        var written = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        bool Sets(params string[] keywords) => keywords.Any(written.ContainsKey);
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (!Sets("Timeout", "Connect Timeout", "Connection Timeout"))
        {
            builder.Timeout = DefaultTimeoutSeconds;
        }

        if (!Sets("Command Timeout", "CommandTimeout"))
        {
            builder.CommandTimeout = DefaultTimeoutSeconds;
        }

        if (!Sets("Cancellation Timeout", "CancellationTimeout"))
        {
            builder.CancellationTimeout = DefaultCancellationTimeoutMilliseconds;
        }

        return builder.ConnectionString;
    }

    /// <summary>
    /// The connection string of the grain storage, and how long a storage call may take. The storage gets no Npgsql
    /// command timeout: the grains' storage wrapper (<c>SessionGrainStorage</c>) stops waiting at the deadline instead. Npgsql answers a
    /// command's timeout by cancelling the query on a second connection, synchronously, holding a thread-pool thread
    /// while it waits for a database that does not answer (its SSL negotiation, up to the connect timeout); with every
    /// request timing out at once, that starved the silo's two-core thread pool and requests failed in 9-12 s, not 2.
    /// A call given up on this way finishes or fails on its connection when the database answers again, as a timed-out
    /// Redis command can: the caller was told 503, so either outcome is one it allowed for. The clustering and
    /// reminder providers keep Npgsql's timeout: few calls, and nothing of theirs stops waiting for them.
    /// </summary>
    public static (string ConnectionString, TimeSpan Deadline) ForGrainStorage(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(ForProviders(connectionString));
        var deadline = TimeSpan.FromSeconds(builder.CommandTimeout > 0 ? builder.CommandTimeout : DefaultTimeoutSeconds);
        builder.CommandTimeout = 0;
        return (builder.ConnectionString, deadline);
    }

    /// <summary>Where a connection string points, for logs: host, port and database; never the user or password.</summary>
    public static string Describe(string connectionString)
    {
        var parsed = new NpgsqlConnectionStringBuilder(connectionString);
        return $"{parsed.Host}:{parsed.Port}/{parsed.Database ?? parsed.Username}";
    }
}
