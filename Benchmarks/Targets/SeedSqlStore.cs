using System.Globalization;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;

namespace SessionGrains.Benchmarks;

/// <summary>
/// The seed chapter's <c>DatabaseSessionStore</c> (TypeScript on Prisma) ported to plain SQL on Npgsql: the table of
/// its <c>model Session</c> with the same keys and indexes (id, unique session token, user id, expiry), JSON data,
/// and each method as the one statement Prisma sends for it: <c>set</c> an upsert on the token, <c>get</c> a select
/// by token of an unexpired row, <c>deleteAllForUser</c> a delete by user id. Its hourly cleanup job
/// (<c>DELETE ... WHERE expires_at &lt; now()</c>) is not run: nothing expires within a run (30-minute sessions).
/// Listing and counting, which the seed's SQL store leaves out, are what its schema offers: the user-id index, and
/// <c>count(*)</c> of unexpired rows. One pooled <see cref="NpgsqlDataSource"/>, parameterised statements prepared on
/// each connection (Npgsql's automatic preparation, as Prisma's engine caches its statements); no other tuning.
/// </summary>
internal sealed class SeedSqlStore : ISessionTarget
{
    private static readonly TimeSpan Ttl = TimeSpan.FromMinutes(30);

    // model Session: id @id @default(cuid()), sessionToken @unique, userId, data Json, expiresAt, createdAt
    // @default(now()), updatedAt @updatedAt; @@index([userId]), @@index([expiresAt]). The relation to User (a
    // foreign key) is left out: there is no user table here, and its check would only slow the seed's writes.
    private const string Schema = """
        CREATE TABLE sessions (
            id text PRIMARY KEY,
            session_token text NOT NULL UNIQUE,
            user_id text NOT NULL,
            data jsonb NOT NULL,
            expires_at timestamptz(3) NOT NULL,
            created_at timestamptz(3) NOT NULL DEFAULT now(),
            updated_at timestamptz(3) NOT NULL
        );
        CREATE INDEX sessions_user_id_idx ON sessions (user_id);
        CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
        """;

    private readonly NpgsqlDataSource _database;

    private SeedSqlStore(NpgsqlDataSource database) => _database = database;

    public string Name => "seed design, SQL (PostgreSQL)";

    public StoreServer Server => StoreServer.PostgreSQL;

    public bool Supports(Workload workload) => !workload.ForFrontends && workload != Workload.Realistic;

    /// <summary>The store on an empty database of its own (<paramref name="connectionString"/>), its table created.</summary>
    public static async Task<SeedSqlStore> StartAsync(string connectionString)
    {
        var database = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(connectionString) { MaxAutoPrepare = 16, AutoPrepareMinUsages = 2 });
        await using (var command = database.CreateCommand(Schema))
        {
            await command.ExecuteNonQueryAsync();
        }

        return new SeedSqlStore(database);
    }

    // set(sessionId, data, ttl): prisma.session.upsert on sessionToken (one INSERT ... ON CONFLICT DO UPDATE)
    public async Task SetAsync(string sessionId, SeedRedisStore.SessionData data)
    {
        await using var command = _database.CreateCommand("""
            INSERT INTO sessions (id, session_token, user_id, data, expires_at, updated_at) VALUES ($1, $2, $3, $4, $5, now())
            ON CONFLICT (session_token) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at, updated_at = now()
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Cuid() });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sessionId });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = data.UserId });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = JsonSerializer.Serialize(data), NpgsqlDbType = NpgsqlDbType.Jsonb });
        command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = DateTime.UtcNow + Ttl });
        await command.ExecuteNonQueryAsync();
    }

    // get(sessionId): prisma.session.findUnique where sessionToken and expiresAt > now, then its data
    public async Task<SeedRedisStore.SessionData?> GetAsync(string sessionId)
    {
        await using var command = _database.CreateCommand("SELECT data FROM sessions WHERE session_token = $1 AND expires_at > now()");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sessionId });
        return await command.ExecuteScalarAsync() is string data ? JsonSerializer.Deserialize<SeedRedisStore.SessionData>(data) : null;
    }

    // Listing by the userId index, unexpired sessions only, as get reads them.
    public async Task<List<SeedRedisStore.SessionData>> FindByUserIdAsync(string userId)
    {
        await using var command = _database.CreateCommand("SELECT data FROM sessions WHERE user_id = $1 AND expires_at > now()");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = userId });
        await using var reader = await command.ExecuteReaderAsync();
        var sessions = new List<SeedRedisStore.SessionData>();
        while (await reader.ReadAsync())
        {
            sessions.Add(JsonSerializer.Deserialize<SeedRedisStore.SessionData>(reader.GetString(0))!);
        }

        return sessions;
    }

    public async Task<string> CreateAsync(string userId)
    {
        var id = Guid.NewGuid().ToString("N");
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await SetAsync(id, new SeedRedisStore.SessionData(userId, "member", now, now, new Dictionary<string, string>()));
        return id;
    }

    public async Task<bool> ValidateAsync(string handle) => await GetAsync(handle) is not null;

    public async Task UpdateAsync(string handle, int value)
    {
        var data = await GetAsync(handle) ?? throw new InvalidOperationException("seed session gone");
        data.Metadata["n"] = value.ToString(CultureInfo.InvariantCulture);
        await SetAsync(handle, data with { LastAccessedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() });
    }

    public async Task<int> ListByUserAsync(string userId) => (await FindByUserIdAsync(userId)).Count;

    // deleteAllForUser(userId): prisma.session.deleteMany where userId
    public async Task<int> DeleteAllForUserAsync(string userId)
    {
        await using var command = _database.CreateCommand("DELETE FROM sessions WHERE user_id = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = userId });
        return await command.ExecuteNonQueryAsync();
    }

    public async Task<long> CountAsync()
    {
        await using var command = _database.CreateCommand("SELECT count(*) FROM sessions WHERE expires_at > now()");
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Empties the table, so that the count workload counts exactly what it stored.</summary>
    public async Task ClearAsync()
    {
        await using var command = _database.CreateCommand("TRUNCATE sessions");
        await command.ExecuteNonQueryAsync();
    }

    public async Task StoreManyAsync(int count)
    {
        for (var start = 0; start < count; start += 1000)
        {
            await Task.WhenAll(Enumerable.Range(start, Math.Min(1000, count - start)).Select(i => CreateAsync($"count-{i / 20}")));
        }
    }

    public ValueTask DisposeAsync() => _database.DisposeAsync();

    // Prisma's cuid(): 25 characters, made by the client.
    private static string Cuid() => "c" + Guid.NewGuid().ToString("N")[..24];
}
