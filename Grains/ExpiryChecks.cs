namespace SessionGrains;

/// <summary>
/// Asks sessions to check their expiry (<see cref="ISessionLifecycleGrain.CheckExpiryAsync"/>) a batch at a time: what
/// an expiry bucket does when it is due, and the PostgreSQL sweep for the sessions no bucket holds.
/// </summary>
internal static class ExpiryChecks
{
    // Sessions checked at once: enough to overlap storage reads, few enough to pace them.
    private const int InFlight = 32;

    /// <summary>Checks every session of <paramref name="sessionIds"/>; returns those whose check failed, and the first failure.</summary>
    public static async Task<(List<string> Failed, Exception? FirstFailure)> RunAsync(IGrainFactory grains, IReadOnlyCollection<string> sessionIds)
    {
        var failed = new List<string>();
        Exception? first = null;
        foreach (var chunk in sessionIds.Chunk(InFlight))
        {
            var checks = chunk.Select(id => grains.SessionLifecycle(id).CheckExpiryAsync()).ToArray();
            try
            {
                await Task.WhenAll(checks);
            }
            catch (Exception exception)
            {
                first ??= exception;
            }

            failed.AddRange(chunk.Where((_, i) => !checks[i].IsCompletedSuccessfully));
        }

        return (failed, first);
    }
}
