namespace SessionGrains;

/// <summary>Rotation: the old session hands over to a new id, which the index stores and lists in its place.</summary>
internal sealed partial class UserSessionsGrain
{
    public Task<SessionInfo?> RotateSessionAsync(string oldSessionId, string newSessionId, TimeSpan gracePeriod) =>
        StorageConflicts.RetryAsync(() => RotateCoreAsync(oldSessionId, newSessionId, gracePeriod), ReloadAsync);

    private async Task<SessionInfo?> RotateCoreAsync(string oldSessionId, string newSessionId, TimeSpan gracePeriod)
    {
        var carried = await Lifecycle(oldSessionId).HandOverAsync(newSessionId, gracePeriod);
        var wasListed = Sessions.Remove(oldSessionId);
        if (carried is null)
        {
            if (wasListed)
            {
                RecordEnded(oldSessionId, SessionEndReason.Expired);
                await SaveAsync(-1);
            }

            return null;
        }

        if (!await StoreNewSessionAsync(carried))
        {
            throw new InvalidOperationException("A session with the new id already exists.");
        }

        Sessions[newSessionId] = SessionSummary.From(carried);
        RecordRotated(oldSessionId, carried);
        await SaveAsync(wasListed ? 0 : 1);
        return carried;
    }
}
