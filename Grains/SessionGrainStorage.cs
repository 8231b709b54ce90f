using Microsoft.Extensions.Logging;
using Orleans.Storage;
using StackExchange.Redis;

namespace SessionGrains;

/// <summary>
/// The storage the session grains see: the configured provider (<see cref="RedisStateStorage"/> or memory), counted
/// in <see cref="SessionGrainsMetrics"/>, with any failure but an etag conflict reported as <see cref="SessionStoreUnavailableException"/> (HTTP 503), so
/// callers get one clear error whatever the provider threw. The in-memory store ends with the last silo:
/// while that one stops, writes to it are skipped (<see cref="LastSiloShutdown"/>), as nothing could keep them.
/// With a deadline (PostgreSQL: <see cref="PostgresConfiguration.ForGrainStorage"/>), a call that has not answered by
/// then is reported unavailable and left to finish on its own.
/// </summary>
internal sealed partial class SessionGrainStorage(
    string name,
    IGrainStorage inner,
    SessionGrainsMetrics metrics,
    LastSiloShutdown? endsWithLastSilo,
    ILoggerFactory loggers,
    TimeSpan? deadline = null) : IGrainStorage
{
    /// <summary>
    /// The category of this storage's own line per failure. Orleans logs each failure of a storage again, with the
    /// stack, under the storage's type name: <c>AddSessionGrains</c> silences that category, as it only repeats this one.
    /// </summary>
    public const string LogCategory = "SessionGrains.Storage";

    private readonly ILogger logger = loggers.CreateLogger(LogCategory);

    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(5);

    /// <summary>The storage's activities, under the same source name as the client's (<c>SessionGrains</c>).</summary>
    private static readonly System.Diagnostics.ActivitySource Activities = new(SessionGrainsMetrics.MeterName);

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

        // Inside the grain's call: with Orleans' activity propagation on, a frontend's trace shows its session call
        // and the storage time under it. Only the storage and the operation are tagged, never the grain (a session id).
        using var activity = Activities.HasListeners() ? Activities.StartActivity($"{operation} {name}", System.Diagnostics.ActivityKind.Client) : null;
        activity?.SetTag("db.operation.name", operation);
        activity?.SetTag("sessiongrains.storage", name);
        try
        {
            var pending = call();
            await (deadline is { } wait ? Abandon.AfterAsync(pending, wait) : pending).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is not InconsistentStateException and not SessionStoreUnavailableException)
        {
            activity?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, exception.GetType().Name);
            // An outage (Redis down, timing out, refusing) is one line: its stack says nothing. Anything else keeps its stack.
            if (IsOutage(exception))
            {
                Log.Unavailable(logger, name, operation, exception switch
                {
                    RedisConnectionException connection => $"{exception.GetType().Name} ({connection.FailureType})",
                    TimeoutException when deadline is { } wait => $"no answer within {wait.TotalSeconds:0.#} s",
                    _ => exception.GetType().Name,
                });
            }
            else
            {
                Log.Failed(logger, exception, name, operation);
            }

            throw new SessionStoreUnavailableException($"The session storage is unavailable ({operation} failed); try again shortly.", RetryAfter);
        }
    }

    /// <summary>
    /// A failure of the store's connection rather than of this code: Redis' own errors, PostgreSQL's transient ones,
    /// timeouts, cancelled or broken connections, and whatever the Redis client throws while it tears a connection down.
    /// </summary>
    private static bool IsOutage(Exception? exception) =>
        exception is not null
        && (exception is RedisException or TimeoutException or OperationCanceledException or System.Net.Sockets.SocketException or IOException
            || exception is Npgsql.NpgsqlException { IsTransient: true } // PostgreSQL away, restarting, or timing out
            || exception.TargetSite?.DeclaringType?.Assembly is { } thrower
                && (thrower == typeof(IDatabase).Assembly || thrower == typeof(System.IO.Pipelines.PipeReader).Assembly)
            || IsOutage(exception.InnerException) // Orleans' own Redis provider (legacy records) wraps the client's error,
            || exception is Orleans.Persistence.Redis.RedisStorageException // or, on reads, names it in its message only
                && exception.Message.Contains("StackExchange.Redis.Redis", StringComparison.Ordinal));

    private static partial class Log
    {
        [LoggerMessage(6001, LogLevel.Error, "Storage {Storage} failed to {Operation} grain state.")]
        public static partial void Failed(ILogger logger, Exception exception, string storage, string operation);

        [LoggerMessage(6002, LogLevel.Error, "Storage {Storage} could not {Operation} grain state: {Reason}. Callers get 503 until it answers again.")]
        public static partial void Unavailable(ILogger logger, string storage, string operation, string reason);
    }
}
