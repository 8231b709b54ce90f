using Microsoft.Extensions.Logging;
using Orleans.Storage;

namespace SessionGrains;

/// <summary>
/// The storage the session grains see: the configured provider (<see cref="RedisStateStorage"/> or memory), counted
/// in <see cref="SessionGrainsMetrics"/>, with any failure but an etag conflict reported as <see cref="SessionStoreUnavailableException"/> (HTTP 503), so
/// callers get one clear error whatever the provider threw. The in-memory store ends with the last silo:
/// while that one stops, writes to it are skipped (<see cref="LastSiloShutdown"/>), as nothing could keep them.
/// </summary>
internal sealed partial class SessionGrainStorage(
    string name,
    IGrainStorage inner,
    SessionGrainsMetrics metrics,
    LastSiloShutdown? endsWithLastSilo,
    ILogger<SessionGrainStorage> logger) : IGrainStorage
{
    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(5);

    private readonly KeyValuePair<string, object?> _storageTag = new("storage", name);

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        GuardAsync("read", () => inner.ReadStateAsync(stateName, grainId, grainState));

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        StoreEndsNow ? Task.CompletedTask : GuardAsync("write", () => inner.WriteStateAsync(stateName, grainId, grainState));

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        StoreEndsNow ? Task.CompletedTask : GuardAsync("clear", () => inner.ClearStateAsync(stateName, grainId, grainState));

    // The in-memory store while the last silo stops: nothing written now could be kept.
    private bool StoreEndsNow => endsWithLastSilo?.IsUnderWay == true;

    private async Task GuardAsync(string operation, Func<Task> call)
    {
        metrics.StorageOperations.Add(1, _storageTag, new KeyValuePair<string, object?>("operation", operation));
        try
        {
            await call().ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is not InconsistentStateException and not SessionStoreUnavailableException)
        {
            Log.Failed(logger, exception, name, operation);
            throw new SessionStoreUnavailableException($"The session storage is unavailable ({operation} failed); try again shortly.", RetryAfter);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(6001, LogLevel.Error, "Storage {Storage} failed to {Operation} grain state.")]
        public static partial void Failed(ILogger logger, Exception exception, string storage, string operation);
    }
}
