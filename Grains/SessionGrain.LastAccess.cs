namespace SessionGrains;

/// <summary>
/// The last-access (sliding window) write. Validations slide the session in memory; the stored last access
/// follows lazily, when enough of the idle window has passed, and once more when the activation goes idle.
/// </summary>
internal sealed partial class SessionGrain
{
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        try
        {
            await EndLeasesOnDeactivationAsync();
        }
        catch (Exception exception)
        {
            Log.DeactivationWriteFailed(_logger, exception, SessionIds.ForLog(SessionId));
        }

        // Keep the sliding window of a session that goes idle: one write instead of losing up to a fraction of it.
        if (_session is not null && _lastAccessedAt > _state.State.Session?.LastAccessedAt)
        {
            try
            {
                // With the last silo going, the index could not be placed to hear it: its "last active" is an
                // estimate anyway, and catches up on the next write that is due.
                await PersistAccessAsync(reportToIndex: !_lastSiloShutdown.IsUnderWay);
            }
            catch (Exception exception)
            {
                Log.DeactivationWriteFailed(_logger, exception, SessionIds.ForLog(SessionId));
            }
        }
    }

    /// <summary>
    /// The sliding last access is written only when a fraction of the idle timeout
    /// (<see cref="SessionGrainsOptions.LastAccessWriteFraction"/>) has passed since the stored one, so
    /// validations are answered from memory. A crash loses at most that fraction of the idle window.
    /// </summary>
    private Task PersistAccessIfDueAsync(DateTimeOffset now)
    {
        var stored = _state.State.Session!;
        var interval = stored.IdleTimeout * _options.LastAccessWriteFraction;
        return now - stored.LastAccessedAt >= interval ? PersistAccessAsync() : Task.CompletedTask;
    }

    private async Task PersistAccessAsync(bool reportToIndex = true)
    {
        var session = Live!;
        if (session.LastAccessedAt == _state.State.Session?.LastAccessedAt)
        {
            return;
        }

        await WriteAsync(session);

        // Lazily keep the index's "last active" (and its expiry estimate) close to the truth.
        if (reportToIndex)
        {
            await GrainFactory.UserSessions(session.UserId).ReportActivityAsync(SessionSummary.From(session));
        }
    }
}
