using StackExchange.Redis;

namespace SessionGrains;

/// <summary>A lazily opened Redis connection, shared by the storage backstop and the health check.</summary>
internal sealed class RedisConnection(ConfigurationOptions configuration) : IAsyncDisposable
{
    private readonly Lazy<Task<ConnectionMultiplexer>> _connection =
        new(() => ConnectionMultiplexer.ConnectAsync(configuration));

    /// <summary>The database, connecting on first use.</summary>
    public async Task<IDatabase> GetDatabaseAsync() =>
        (await _connection.Value.ConfigureAwait(false)).GetDatabase();

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (_connection.IsValueCreated && _connection.Value.IsCompletedSuccessfully)
        {
            await _connection.Value.Result.DisposeAsync().ConfigureAwait(false);
        }
    }
}
