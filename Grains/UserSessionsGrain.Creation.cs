using Microsoft.Extensions.Logging;

namespace SessionGrains;

/// <summary>
/// Creation within the per-user limit (reject the new session, or evict the oldest), and the store of a new
/// session without activating its grain.
/// </summary>
internal sealed partial class UserSessionsGrain
{
    public Task<SessionCreateResult> CreateSessionAsync(string sessionId, SessionCreateOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return StorageConflicts.RetryAsync(() => CreateCoreAsync(sessionId, options), ReloadAsync);
    }

    private async Task<SessionCreateResult> CreateCoreAsync(string sessionId, SessionCreateOptions options)
    {
        if (Sessions.ContainsKey(sessionId))
        {
            // A retried create whose first answer was lost: the session is already here.
            if (await Session(sessionId).PeekAsync() is { } existing)
            {
                return new SessionCreateResult(existing, LimitReached: false, null);
            }

            Sessions.Remove(sessionId);
            RecordEnded(sessionId, SessionEndReason.Expired);
            await SaveAsync(-1);
        }

        var now = _time.GetUtcNow();
        var session = SessionRules.NewSession(sessionId, UserId, options, _options, now);
        var (limit, policy) = SessionRules.Limit(options, _options);
        if (CreationCooldown(now) is { } retryAfter)
        {
            return new SessionCreateResult(null, LimitReached: false, retryAfter);
        }

        var removed = await PruneAsync(now);
        if (Sessions.Count >= limit && policy == SessionLimitPolicy.RejectNew)
        {
            if (removed > 0)
            {
                await SaveAsync(-removed);
            }

            Log.LimitRejected(_logger, SessionIds.UserForLog(UserId), limit);
            return new SessionCreateResult(null, LimitReached: true, null);
        }

        while (Sessions.Count >= limit)
        {
            var oldest = Sessions.Values.MinBy(s => (s.CreatedAt, s.SessionId))!;
            var wasLive = await Lifecycle(oldest.SessionId).EndAsync(SessionEndReason.Evicted);
            Sessions.Remove(oldest.SessionId);
            RecordEnded(oldest.SessionId, wasLive ? SessionEndReason.Evicted : SessionEndReason.Expired);
            removed++;
        }

        session = await StoreWithEntryAsync(session, 1 - removed);
        _metrics.SessionsCreated.Add(1);
        return new SessionCreateResult(session, LimitReached: false, null);
    }

    /// <summary>
    /// Writes a new session and its index entry together, so Redis gets both in one round trip, not two. When the
    /// session's write did not happen (its id is taken, or storage failed), the entry is put right after.
    /// </summary>
    private async Task<SessionInfo> StoreWithEntryAsync(SessionInfo session, int liveDelta)
    {
        var sessionId = session.SessionId;
        Sessions[sessionId] = SessionSummary.From(session);
        RecordCreated(session);
        var storing = StoreNewSessionAsync(session);
        var saving = SaveAsync(liveDelta);
        bool stored;
        try
        {
            stored = await storing;
        }
        catch
        {
            // No session: the entry must not stay, in memory or (if its write went through) in storage.
            Sessions.Remove(sessionId);
            if (await Succeeded(saving))
            {
                RecordEnded(sessionId, SessionEndReason.Abandoned);
                await SaveAsync(-1);
            }

            throw;
        }

        // An etag conflict here retries the whole create on the reloaded index, which then adopts the session stored now.
        await saving;
        if (stored)
        {
            return session;
        }

        // The id is taken: by a session this index lost (a crash between the two writes), which it adopts, or not.
        if (await Session(sessionId).PeekAsync() is { } existing && existing.UserId == UserId)
        {
            Sessions[sessionId] = SessionSummary.From(existing);
            await SaveAsync(0);
            return existing;
        }

        Sessions.Remove(sessionId);
        RecordEnded(sessionId, SessionEndReason.Abandoned);
        await SaveAsync(-1);
        throw new InvalidOperationException("A session with this id already exists.");
    }

    private static async Task<bool> Succeeded(Task task)
    {
        try
        {
            await task;
            return true;
        }
        catch (Exception) when (task.IsFaulted)
        {
            return false;
        }
    }

    /// <summary>
    /// Stores a new session (a create, or the target of a rotation) without activating its grain
    /// (<see cref="SessionRecord.TryCreateAsync"/>): a create neither reads what it is creating nor pays for an
    /// activation nobody may use soon. A taken id is refused, not overwritten. The session grain reads the
    /// state when first called; an empty activation never lingers (SessionGrain.LeaveIfEmpty).
    /// Then the session is filed for its expiry check.
    /// </summary>
    private async Task<bool> StoreNewSessionAsync(SessionInfo session)
    {
        if (!await SessionRecord.TryCreateAsync(_sessionStorage, session))
        {
            return false;
        }

        await SessionExpiryBuckets.FileAsync(GrainFactory, session.SessionId, session.ExpiresAt, _options.ExpiryBucketWidth);
        Log.Created(_logger, SessionIds.ForLog(session.SessionId), session.IdleTimeout, session.AbsoluteExpiresAt);
        return true;
    }

    private static partial class Log
    {
        [LoggerMessage(1001, LogLevel.Debug, "Session {Session} created, idle timeout {IdleTimeout}, absolute expiry {AbsoluteExpiresAt:O}.")]
        public static partial void Created(ILogger logger, string session, TimeSpan idleTimeout, DateTimeOffset absoluteExpiresAt);

        [LoggerMessage(2001, LogLevel.Information, "A new session of {User} was refused: the user is at the limit of {Limit} sessions.")]
        public static partial void LimitRejected(ILogger logger, string user, int limit);
    }
}
