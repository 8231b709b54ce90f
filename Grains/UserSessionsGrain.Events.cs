using Microsoft.Extensions.Logging;

namespace SessionGrains;

/// <summary>
/// Session events: each change the index makes records its events on the state, and they reach the event log with
/// the write of that change (<see cref="SaveAsync"/>). Where the store appends them in the write itself (Redis) the
/// log has an event exactly for each change written; elsewhere they are appended right after it.
/// </summary>
internal sealed partial class UserSessionsGrain
{
    private void RecordCreated(SessionInfo session) =>
        Record(new SessionEvent(SessionEventKind.Created, UserId, session.SessionId, _time.GetUtcNow()));

    private void RecordRotated(string oldSessionId, SessionInfo session) =>
        Record(new SessionEvent(SessionEventKind.Rotated, UserId, session.SessionId, _time.GetUtcNow()) { PreviousSessionId = oldSessionId });

    private void RecordEnded(string sessionId, SessionEndReason reason) =>
        Record(new SessionEvent(SessionEventKind.Ended, UserId, sessionId, _time.GetUtcNow()) { EndReason = reason });

    private void Record(SessionEvent e)
    {
        if (_options.Events.Enabled)
        {
            _state.State.Unpublished.Add(e);
        }
    }

    /// <summary>
    /// Appends the events the storage did not append with the write of <paramref name="written"/>. The change is
    /// made by then, so a failure here is logged and counted, not thrown: the caller must not retry a change that
    /// happened. A quick failure is tried again twice; a timeout is not.
    /// </summary>
    private async Task PublishRestAsync(UserSessionsState written)
    {
        if (written.Unpublished.Count == 0)
        {
            return;
        }

        SessionEvent[] events = [.. written.Unpublished];
        written.Unpublished.Clear();
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await _events.AppendAsync(events);
                return;
            }
            catch (Exception e) when (attempt < 3 && e is not TimeoutException)
            {
                // Not after a timeout: the store may still make that append, so a retry could append the events twice,
                // and a store that did not answer within its deadline is not back 100 ms later. Retrying it held the
                // caller for three deadlines (PostgreSQL frozen: a request took 8.4 s).
                Log.EventAppendRetried(_logger, e.GetType().Name, attempt);
                await Task.Delay(TimeSpan.FromMilliseconds(100 * attempt));
            }
            catch (Exception e)
            {
                _metrics.EventsLost.Add(events.Length);
                Log.EventsLost(_logger, events.Length, SessionIds.UserForLog(UserId), e.GetType().Name);
                return;
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(2101, LogLevel.Warning, "Appending session events failed ({Error}), attempt {Attempt}; trying again.")]
        public static partial void EventAppendRetried(ILogger logger, string error, int attempt);

        [LoggerMessage(2102, LogLevel.Error, "{Count} session events of {User} were not appended to the event log ({Error}); their changes were made.")]
        public static partial void EventsLost(ILogger logger, int count, string user, string error);
    }
}
