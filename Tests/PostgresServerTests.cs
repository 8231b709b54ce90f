using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>The PostgreSQL fixture the relational mode's tests build on: a real server, private, on loopback, gone after.</summary>
public sealed class PostgresServerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_private_postgresql_answers_on_a_loopback_port_only_with_its_password_and_is_gone_after()
    {
        var server = new PostgresServer();
        await server.InitializeAsync();
        try
        {
            await using (var connection = await server.OpenAsync())
            {
                await using var command = connection.CreateCommand();
                command.CommandText = "SELECT current_setting('listen_addresses'), current_setting('port')::int, version()";
                await using var reader = await command.ExecuteReaderAsync(Ct);
                Assert.True(await reader.ReadAsync(Ct));
                Assert.Equal("127.0.0.1", reader.GetString(0));
                Assert.Equal(server.Port, reader.GetInt32(1));
                Assert.StartsWith("PostgreSQL", reader.GetString(2), StringComparison.Ordinal);
            }

            // Password authentication, even on loopback: a wrong password is refused.
            var wrong = new Npgsql.NpgsqlConnectionStringBuilder(server.ConnectionString) { Password = "wrong" }.ConnectionString;
            await using var refused = new Npgsql.NpgsqlConnection(wrong);
            await Assert.ThrowsAsync<Npgsql.PostgresException>(() => refused.OpenAsync(Ct));
        }
        finally
        {
            await server.DisposeAsync();
        }

        Assert.False(Directory.Exists(server.Directory), "the server's directory was left behind");
        await using var gone = new Npgsql.NpgsqlConnection(server.ConnectionString);
        await Assert.ThrowsAnyAsync<Exception>(() => gone.OpenAsync(Ct));
    }
}
