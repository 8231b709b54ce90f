namespace SessionGrains.Silo;

/// <summary>
/// <c>dotnet run --project Silo -- migrate</c>: creates or upgrades the PostgreSQL schema named by
/// <c>SessionStore:Postgres</c> (same configuration sources as the silo), then exits. Idempotent, and safe to run on
/// every deploy and from several silos at once (<see cref="PostgresSchema.MigrateAsync"/>).
/// </summary>
internal static class MigrateCommand
{
    public const string Verb = "migrate";

    /// <summary>Exit codes: 0 done (or nothing to do), 2 no PostgreSQL setting, 1 the migration failed.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        var configuration = new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true)
            .AddEnvironmentVariables()
            .AddCommandLine(args.Skip(1).ToArray())
            .Build();
        var connectionString = configuration[PostgresConfiguration.PostgresSetting];
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            await Console.Error.WriteLineAsync($"{Verb}: set {PostgresConfiguration.PostgresSetting} (environment: SessionStore__Postgres) to the database to migrate.");
            return 2;
        }

        if (PostgresConfiguration.Problem(connectionString) is { } problem)
        {
            await Console.Error.WriteLineAsync($"{Verb}: {PostgresConfiguration.PostgresSetting} is not a usable Npgsql connection string: {problem}");
            return 2;
        }

        var target = PostgresConfiguration.Describe(connectionString);
        try
        {
            var found = await PostgresSchema.MigrateAsync(connectionString);
            Console.WriteLine(found == PostgresSchema.CurrentVersion
                ? $"{Verb}: PostgreSQL at {target} already has schema version {found}; nothing to do."
                : $"{Verb}: PostgreSQL at {target} migrated from schema version {found} to {PostgresSchema.CurrentVersion}.");
            return 0;
        }
        catch (Exception exception) when (exception is Npgsql.NpgsqlException or InvalidOperationException)
        {
            // The message names the failure, never the connection string (Npgsql does not put it in its messages).
            await Console.Error.WriteLineAsync($"{Verb}: PostgreSQL at {target}: {exception.Message}");
            return 1;
        }
    }
}
