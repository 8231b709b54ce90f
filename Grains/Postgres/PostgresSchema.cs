using System.Globalization;
using Npgsql;

namespace SessionGrains;

/// <summary>
/// The PostgreSQL schema SessionGrains runs on: Orleans' clustering, reminder and grain-storage tables and the queries
/// its ADO.NET providers read from them (version 1), and the session event log (version 2) (<c>Postgres/Schema-N.sql</c>, embedded). <see cref="MigrateAsync"/> brings a
/// database to <see cref="CurrentVersion"/>; a silo checks the version as it starts and refuses to run on another.
/// </summary>
public static class PostgresSchema
{
    /// <summary>The schema version this release runs on.</summary>
    public const int CurrentVersion = 2;

    /// <summary>The command that creates or upgrades the schema, as messages name it.</summary>
    public const string MigrateCommand = "dotnet run --project Silo -- migrate";

    // Any constant: migrations of every SessionGrains cluster in one database queue behind it.
    private const long MigrationLock = 0x5E55_1011_6A1E;

    /// <summary>
    /// Creates the schema, or upgrades it to <see cref="CurrentVersion"/>, and answers the version it found before.
    /// Idempotent and safe from several processes at once: each step runs in one transaction, behind an advisory
    /// lock, and only if the database is older. A database newer than this release is left alone and refused.
    /// </summary>
    /// <param name="connectionString">Npgsql connection string of a role that may create tables in the target schema.</param>
    /// <param name="cancellationToken">Stops waiting for the lock or the database.</param>
    public static Task<int> MigrateAsync(string connectionString, CancellationToken cancellationToken = default) =>
        MigrateToAsync(connectionString, CurrentVersion, cancellationToken);

    /// <summary>
    /// <see cref="MigrateAsync"/> up to <paramref name="toVersion"/> only: how the tests make
    /// a database of an earlier release, to upgrade it.
    /// </summary>
    internal static async Task<int> MigrateToAsync(string connectionString, int toVersion, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        ArgumentOutOfRangeException.ThrowIfLessThan(toVersion, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(toVersion, CurrentVersion);
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, $"SELECT pg_advisory_xact_lock({MigrationLock})", cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, "CREATE TABLE IF NOT EXISTS sessiongrains_schema (version integer NOT NULL, migrated_at timestamptz NOT NULL DEFAULT now())", cancellationToken).ConfigureAwait(false);
        var found = await VersionAsync(connection, transaction, cancellationToken).ConfigureAwait(false) ?? 0;
        if (found > CurrentVersion)
        {
            throw new InvalidOperationException(NewerMessage(found));
        }

        for (var version = found + 1; version <= toVersion; version++)
        {
            await ExecuteAsync(connection, transaction, Script(version), cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, transaction, string.Create(CultureInfo.InvariantCulture, $"INSERT INTO sessiongrains_schema (version) VALUES ({version})"), cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return found;
    }

    /// <summary>
    /// Fails, with a message that names <see cref="MigrateCommand"/>, unless the database has this release's schema.
    /// Connection failures are left to the caller (they may be worth a retry; a missing schema is not).
    /// </summary>
    internal static async Task EnsureCurrentAsync(NpgsqlDataSource database, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (var exists = new NpgsqlCommand("SELECT to_regclass('sessiongrains_schema') IS NOT NULL", connection))
        {
            if (!(bool)(await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!)
            {
                throw new InvalidOperationException(
                    $"{PostgresConfiguration.PostgresSetting}: the database has no SessionGrains schema. Create it with `{MigrateCommand}` (same settings), then start the silo again.");
            }
        }

        var found = await VersionAsync(connection, transaction: null, cancellationToken).ConfigureAwait(false) ?? 0;
        if (found < CurrentVersion)
        {
            throw new InvalidOperationException(
                $"{PostgresConfiguration.PostgresSetting}: the database has SessionGrains schema version {found}; this release needs {CurrentVersion}. Upgrade it with `{MigrateCommand}`.");
        }

        if (found > CurrentVersion)
        {
            throw new InvalidOperationException(NewerMessage(found));
        }
    }

    private static string NewerMessage(int found) =>
        $"{PostgresConfiguration.PostgresSetting}: the database has SessionGrains schema version {found}, newer than this release's {CurrentVersion}. Run a release that knows it.";

    private static async Task<int?> VersionAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT max(version) FROM sessiongrains_schema", connection, transaction);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is int version ? version : null;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static string Script(int version)
    {
        var name = string.Create(CultureInfo.InvariantCulture, $"SessionGrains.Postgres.Schema-{version}.sql");
        using var stream = typeof(PostgresSchema).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"The schema script {name} is missing from this build.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
