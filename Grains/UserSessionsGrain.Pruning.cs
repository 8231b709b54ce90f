namespace SessionGrains;

/// <summary>Pruning: the index drops entries of sessions that ended or expired without telling it.</summary>
internal sealed partial class UserSessionsGrain
{
    /// <summary>
    /// Drops entries of sessions that are no longer live. The index's expiry estimate is never later than
    /// the truth (the session reports its last access lazily), so only entries it believes expired need a
    /// look at the session itself; they are checked all at once.
    /// </summary>
    private async Task<int> PruneAsync(DateTimeOffset now)
    {
        var suspects = Sessions.Values.Where(s => SessionExpiry.IsExpired(now, s.ExpiresAt)).ToList();
        if (suspects.Count == 0)
        {
            return 0;
        }

        var current = await Task.WhenAll(suspects.Select(s => Session(s.SessionId).PeekAsync()));
        var removed = 0;
        for (var i = 0; i < suspects.Count; i++)
        {
            if (current[i] is { } live)
            {
                Sessions[live.SessionId] = SessionSummary.From(live);
                _activityUnsaved = true;
            }
            else
            {
                Sessions.Remove(suspects[i].SessionId);
                RecordEnded(suspects[i].SessionId, SessionEndReason.Expired);
                removed++;
            }
        }

        return removed;
    }

    private async Task PruneAndSaveAsync()
    {
        var removed = await PruneAsync(_time.GetUtcNow());
        if (removed > 0)
        {
            await SaveAsync(-removed);
        }
    }
}
