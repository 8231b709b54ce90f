namespace SessionGrains;

/// <summary>
/// Around each call: after a call that failed, the next reads the index as stored first. And an index with nothing in
/// it leaves memory after each call: anyone may ask about any user id (a list, a revoke), and an activation per random
/// id kept for the idle collection age would let junk grow the silo's memory.
/// </summary>
internal sealed partial class UserSessionsGrain : IIncomingGrainCallFilter
{
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        try
        {
            if (_stale)
            {
                await ReloadAsync();
            }

            await context.Invoke();
        }
        catch (Exception e) when (e is not ArgumentException)
        {
            // A call that failed may have changed memory and not storage, and its events went with the failed write
            // (or never were): a later write would store that change without them. (Bad arguments are refused before
            // any change.) (A logout whose index write failed in a
            // Redis outage had taken the session out of memory, a rotation whose new session could not be stored had
            // taken the old one out; the next write dropped it from storage and the session ended with no event. Found
            // by EventFaultTests.) So the next call goes on from what storage holds.
            _stale = true;
            throw;
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
