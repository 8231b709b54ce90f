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

    public static Task RetryAsync(Func<Task> operation, Func<Task> reload) =>
        RetryAsync(async () =>
        {
            await operation();
            return true;
        }, reload);
}
