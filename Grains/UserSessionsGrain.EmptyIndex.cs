namespace SessionGrains;

/// <summary>
/// An index with nothing in it leaves memory after each call: anyone may ask about any user id (a list, a revoke), and
/// an activation per random id kept for the idle collection age would let junk grow the silo's memory.
/// </summary>
internal sealed partial class UserSessionsGrain : IIncomingGrainCallFilter
{
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        try
        {
            await context.Invoke();
        }
        finally
        {
            LeaveIfEmpty();
        }
    }

    /// <summary>
    /// Deactivates after the current call when there is nothing to keep: no sessions, no stored record, no unsaved
    /// activity and no creation-burst window (which lives only in memory).
    /// </summary>
    private void LeaveIfEmpty()
    {
        if (Sessions.Count == 0 && !_state.RecordExists && !_activityUnsaved
            && _recentCreates.Count == 0 && _creationCooldownEnds <= _time.GetUtcNow())
        {
            DeactivateOnIdle();
        }
    }
}
