using Orleans.Storage;

namespace SessionGrains;

/// <summary>
/// Where a session expires. Correctness comes from the timestamps, checked on every call
/// (<see cref="SessionExpiry"/>); the one reminder per session only cleans up:
/// <list type="bullet">
/// <item>It is registered once, due at the session's expiry. Touches do not re-register it, so the
/// reminder table stays off the request path.</item>
/// <item>When it fires, a session that was used since is re-armed for the remaining time; an expired one
/// leaves its user index, clears its stored state and deactivates.</item>
/// <item>Reminders may fire late, twice or never: every step is idempotent, the user index prunes entries
/// whose expiry passed, and the stored key carries a TTL (the storage backstop).</item>
/// </list>
/// </summary>
internal sealed partial class SessionGrain
{
    private const string ExpiryReminderName = "expiry";

    // Fallback period: if a re-arm is ever missed, the reminder comes back this often.
    private static readonly TimeSpan ExpiryReminderPeriod = TimeSpan.FromMinutes(1);

    // Set when registering the reminder failed (reminder table unreachable); the next write tries again.
    private bool _expiryReminderMissing;

    public Task ReceiveReminder(string reminderName, TickStatus status) =>
        reminderName == ExpiryReminderName
            ? StorageConflicts.RetryAsync(OnExpiryReminderAsync, ReloadAsync)
            : Task.CompletedTask;

    private async Task OnExpiryReminderAsync()
    {
        var now = _time.GetUtcNow();
        if (_session is { } session)
        {
            if (SessionExpiry.IsExpired(now, session.ExpiresAt))
            {
                await EndOnItsOwnAsync(SessionEndReason.Expired);
            }
            else
            {
                await PersistAccessAsync();
                await ArmExpiryReminderAsync(session.ExpiresAt);
            }
        }
        else if (_state.State.RotatedTo is not null && now < _state.State.RotationGraceEndsAt)
        {
            await ArmExpiryReminderAsync(_state.State.RotationGraceEndsAt);
        }
        else
        {
            await ClearAsync();
        }
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        // Keep the sliding window of a session that goes idle: one write instead of losing up to a fraction of it.
        if (_session is not null && _session.LastAccessedAt > _state.State.Session?.LastAccessedAt)
        {
            try
            {
                await PersistAccessAsync();
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

    private async Task PersistAccessAsync()
    {
        var session = _session!;
        if (session.LastAccessedAt == _state.State.Session?.LastAccessedAt)
        {
            return;
        }

        await WriteAsync(session);

        // Lazily keep the index's "last active" (and its expiry estimate) close to the truth.
        await GrainFactory.GetGrain<IUserSessionsGrain>(session.UserId).ReportActivityAsync(SessionSummary.From(session));
    }

    /// <summary>Ends the session without its index asking (expiry, a signal policy) and tells the index, one-way.</summary>
    private async Task EndOnItsOwnAsync(SessionEndReason reason)
    {
        var userId = _session?.UserId;
        await ClearAsync();
        if (userId is not null)
        {
            _metrics.SessionsEnded.Add(1, new KeyValuePair<string, object?>("reason", reason.ToString()));
            await GrainFactory.GetGrain<IUserSessionsGrain>(userId).ReportEndedAsync(SessionId, reason);
        }

        Log.EndedOnItsOwn(_logger, SessionIds.ForLog(SessionId), reason);
    }

    /// <summary>Removes the session for good: memory, storage (the key is deleted), reminder, activation.</summary>
    private async Task ClearAsync()
    {
        _session = null;
        if (_state.RecordExists)
        {
            await _state.ClearStateAsync();
        }

        _state.State = new SessionState();
        if (await this.GetReminder(ExpiryReminderName) is { } reminder)
        {
            await this.UnregisterReminder(reminder);
        }

        DeactivateOnIdle();
    }

    /// <summary>
    /// Registers the expiry reminder. If the reminder table cannot be reached, the session goes on (its
    /// expiry is checked on every call, and its stored key has a TTL) and the next write tries again.
    /// </summary>
    private async Task ArmExpiryReminderAsync(DateTimeOffset dueAt)
    {
        var dueIn = dueAt - _time.GetUtcNow();
        try
        {
            await this.RegisterOrUpdateReminder(ExpiryReminderName, dueIn > TimeSpan.Zero ? dueIn : TimeSpan.Zero, ExpiryReminderPeriod);
            _expiryReminderMissing = false;
        }
        catch (Exception exception) when (exception is not InconsistentStateException)
        {
            _expiryReminderMissing = true;
            Log.ReminderUnavailable(_logger, exception, SessionIds.ForLog(SessionId));
        }
    }
}
