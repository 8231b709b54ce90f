using Orleans.Storage;

namespace SessionGrains;

/// <summary>
/// What a grain does when storage says another activation wrote first (an etag conflict, possible for a
/// moment after a silo dies or the cluster splits): reload the stored state and run the operation again on
/// it. No write is dropped, and none overwrites a newer one.
/// </summary>
internal static class StorageConflicts
{
    private const int Attempts = 3;

    public static async Task<T> RetryAsync<T>(Func<Task<T>> operation, Func<Task> reload)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await operation();
            }
            catch (InconsistentStateException) when (attempt < Attempts)
            {
                await reload();
            }
        }
    }

    /// <summary>
    /// Runs a timer's write, leaving a storage outage to the next tick: the storage has logged it once
    /// (<see cref="SessionGrainStorage"/>), and Orleans would log it twice more as a failed timer callback.
    /// </summary>
    public static async Task OnTimerAsync(Func<Task> write)
    {
        try
        {
            await write();
        }
        catch (Exception exception) when (IsOutage(exception))
        {
        }
    }

    private static bool IsOutage(Exception? exception) =>
        exception is not null && (exception is SessionStoreUnavailableException || IsOutage(exception.InnerException));

    public static Task RetryAsync(Func<Task> operation, Func<Task> reload) =>
        RetryAsync(async () =>
        {
            await operation();
            return true;
        }, reload);
}
