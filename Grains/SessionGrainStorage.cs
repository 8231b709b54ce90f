using Orleans.Storage;

namespace SessionGrains;

/// <summary>
/// The storage the session grains see: the configured provider (Redis or memory), counted in
/// <see cref="SessionGrainsMetrics"/>, and with Redis the key TTL backstop applied after each write.
/// </summary>
internal sealed class SessionGrainStorage(
    string name,
    IGrainStorage inner,
    SessionGrainsMetrics metrics,
    RedisSessionExpiryBackstop? expiryBackstop) : IGrainStorage
{
    private readonly KeyValuePair<string, object?> _storageTag = new("storage", name);

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        Count("read");
        return inner.ReadStateAsync(stateName, grainId, grainState);
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        Count("write");
        await inner.WriteStateAsync(stateName, grainId, grainState).ConfigureAwait(false);
        if (expiryBackstop is not null && grainState.State is IExpiringState expiring)
        {
            await expiryBackstop.ApplyAsync(grainId, expiring).ConfigureAwait(false);
        }
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        Count("clear");
        return inner.ClearStateAsync(stateName, grainId, grainState);
    }

    private void Count(string operation) =>
        metrics.StorageOperations.Add(1, _storageTag, new KeyValuePair<string, object?>("operation", operation));
}
