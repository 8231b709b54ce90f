namespace SessionGrains;

/// <summary>
/// Where a session expires. Correctness comes from the timestamps, checked on every call
/// (<see cref="SessionExpiry"/>); cleanup comes from expiry buckets (<see cref="SessionExpiryBucketGrain"/>):
/// <list type="bullet">
/// <item>A new session is filed in the bucket of its expiry time by its index, without being activated.
/// Touches do not re-file it, so buckets and reminders stay off the request path.</item>
/// <item>When the bucket is due it calls <see cref="CheckExpiryAsync"/>: a session used since files itself
/// in the bucket of its new expiry; an expired one leaves its user index, clears its stored state and
/// deactivates.</item>
/// <item>Buckets may call late, twice or never: every step is idempotent, the user index prunes entries
/// whose expiry passed, and the stored key carries a TTL (the storage backstop).</item>
/// </list>
/// </summary>
internal sealed partial class SessionGrain
{
    // The per-session reminder of versions before expiry buckets; still answered, once, so stored ones retire.
    private const string LegacyExpiryReminderName = "expiry";

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (await this.GetReminder(reminderName) is { } reminder)
        {
            await this.UnregisterReminder(reminder);
        }

        if (reminderName == LegacyExpiryReminderName)
        {
            await CheckExpiryAsync();
        }
    }

    public Task CheckExpiryAsync() => StorageConflicts.RetryAsync(CheckExpiryCoreAsync, ReloadAsync);

    private async Task CheckExpiryCoreAsync()
    {
        var now = _time.GetUtcNow();
        if (_session is not null)
        {
            if (await IsExpiredAsync(now))
            {
                await EndOnItsOwnAsync(SessionEndReason.Expired);
                _metrics.ExpiryCleanups.Add(1, new KeyValuePair<string, object?>("outcome", "expired"));
            }
            else
            {
                await PersistAccessAsync();
                await FileForExpiryCheckAsync(Live!.ExpiresAt);
            }
        }
        else if (_state.State.RotatedTo is not null && now < _state.State.RotationGraceEndsAt)
        {
            await FileForExpiryCheckAsync(_state.State.RotationGraceEndsAt);
        }
        else
        {
            var existed = _state.RecordExists;
            await ClearAsync();
            if (existed)
            {
                _metrics.ExpiryCleanups.Add(1, new KeyValuePair<string, object?>("outcome", "cleared"));
            }
        }
    }

    /// <summary>Ends the session without its index asking (expiry, a signal policy) and tells the index, one-way.</summary>
    private async Task EndOnItsOwnAsync(SessionEndReason reason)
    {
        var userId = _session?.UserId;
        await ClearAsync();
        if (userId is not null)
        {
            _metrics.SessionsEnded.Add(1, new KeyValuePair<string, object?>("reason", reason.ToString()));
            await GrainFactory.UserSessions(userId).ReportEndedAsync(SessionId, reason);
        }

        Log.EndedOnItsOwn(_logger, SessionIds.ForLog(SessionId), reason);
    }

    /// <summary>Removes the session for good: memory, storage (the key is deleted), activation.</summary>
    private async Task ClearAsync()
    {
        await RecallLeasesAsync();
        Remember(null);
        if (_state.RecordExists)
        {
            await _state.ClearStateAsync();
        }

        _state.State = new SessionState();
        DeactivateOnIdle();
    }

    private Task FileForExpiryCheckAsync(DateTimeOffset dueAt) =>
        SessionExpiryBuckets.FileAsync(GrainFactory, SessionId, dueAt, _options.ExpiryBucketWidth);
}
