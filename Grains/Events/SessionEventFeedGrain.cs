using Orleans.Concurrency;

namespace SessionGrains;

/// <summary>
/// Serves reads of the event log on whichever silo the caller reaches. A read with nothing to return waits (up to
/// the caller's limit) for an append, so a subscription is a chain of long polls, not a busy loop. Reentrant: a
/// waiting read holds no activation from the others.
/// </summary>
[GrainType(SiloGrainTypeNames.EventFeed), StatelessWorker, Reentrant]
internal sealed class SessionEventFeedGrain(ISessionEventLog log) : Grain, ISessionEventFeedGrain
{
    /// <summary>Longest wait a reader may ask for: well inside Orleans' response timeout.</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(5);

    /// <summary>Most events one read returns.</summary>
    public const int MaxBatch = 1_000;

    public async Task<SessionEventBatch> ReadAsync(string after, string? userId, int max, TimeSpan wait)
    {
        ArgumentException.ThrowIfNullOrEmpty(after);
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        var deadline = DateTime.UtcNow + (wait > MaxWait ? MaxWait : wait);
        max = Math.Min(max, MaxBatch);
        while (true)
        {
            // Filtered out events still move the position on, so a reader of one user's events never reads them twice.
            var batch = await log.ReadAsync(after, userId is null ? max : MaxBatch);
            var events = userId is null ? batch.Events : FilterByUser(batch.Events, userId, max, ref batch);
            var remaining = deadline - DateTime.UtcNow;
            if (events.Length > 0 || batch.Trimmed || remaining <= TimeSpan.Zero)
            {
                return batch with { Events = events };
            }

            if (batch.Position == after)
            {
                await log.WaitAsync(after, remaining);
            }

            after = batch.Position;
        }
    }

    public Task<string> EndAsync() => log.EndAsync();

    /// <summary>The user's events, at most <paramref name="max"/>; the batch's position stops after the last one taken when there are more.</summary>
    private static SessionEvent[] FilterByUser(SessionEvent[] events, string userId, int max, ref SessionEventBatch batch)
    {
        var taken = new List<SessionEvent>();
        foreach (var e in events)
        {
            if (e.UserId != userId)
            {
                continue;
            }

            taken.Add(e);
            if (taken.Count == max)
            {
                batch = batch with { Position = e.Position };
                break;
            }
        }

        return [.. taken];
    }
}
