namespace SessionGrains;

/// <summary>Waiting for a store call with a deadline, without cancelling it (see <see cref="PostgresConfiguration.ForGrainStorage"/>).</summary>
internal static class Abandon
{
    /// <summary>
    /// Waits for <paramref name="pending"/> until <paramref name="deadline"/> (<see cref="TimeoutException"/>) or
    /// <paramref name="cancellationToken"/>; a call given up on finishes on its own, and a late failure of it is
    /// observed here, so it is not reported as an unobserved task exception.
    /// </summary>
    public static async Task AfterAsync(Task pending, TimeSpan deadline, CancellationToken cancellationToken = default)
    {
        try
        {
            await pending.WaitAsync(deadline, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is TimeoutException or OperationCanceledException && !pending.IsCompleted)
        {
            _ = pending.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            throw;
        }
    }
}
