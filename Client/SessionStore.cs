namespace SessionGrains;

/// <summary>
/// <see cref="ISessionStore"/> over Orleans grains. Works the same from an external client
/// (<c>IClusterClient</c>) and inside a silo (<c>IGrainFactory</c>). The token never leaves this class:
/// grains receive only the session id derived from it, and a token that fails the
/// <see cref="SessionTokenCodec"/> check (shape, key, MAC) costs no grain call at all.
/// </summary>
public sealed class SessionStore(IGrainFactory grains, SessionTokenCodec tokens) : ISessionStore
{
    /// <inheritdoc/>
    public async Task<CreatedSession> CreateAsync(string userId, SessionCreateOptions? options = null, CancellationToken cancellationToken = default)
    {
        SessionIds.ValidateUserId(userId);
        var token = tokens.Create();
        var result = await Index(userId).CreateSessionAsync(token.SessionId, options ?? new SessionCreateOptions())
            .WaitAsync(cancellationToken).ConfigureAwait(false);
        return result switch
        {
            { Session: { } session } => new CreatedSession(token, session),
            { RetryAfter: { } retryAfter } => throw new SessionThrottledException("Sessions for this user are being created too fast; new ones are refused for a while.", retryAfter),
            _ => throw new SessionLimitExceededException("The user is at the per-user session limit and the policy rejects new sessions."),
        };
    }

    /// <inheritdoc/>
    public Task<SessionInfo?> ValidateAsync(string? token, ClientInfo? client = null, CancellationToken cancellationToken = default) =>
        tokens.TryParse(token, out var parsed)
            ? Session(parsed.SessionId).ValidateAsync(client).WaitAsync(cancellationToken)
            : Task.FromResult<SessionInfo?>(null);

    /// <inheritdoc/>
    public async Task<SessionInfo?> UpdateAsync(string? token, SessionUpdate change, long? expectedVersion = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(change);
        if (!tokens.TryParse(token, out var parsed))
        {
            return null;
        }

        var result = await Session(parsed.SessionId).UpdateAsync(change, expectedVersion).WaitAsync(cancellationToken).ConfigureAwait(false);
        return result.CurrentVersion is { } current
            ? throw new SessionVersionConflictException(expectedVersion ?? 0, current)
            : result.Session;
    }

    /// <inheritdoc/>
    public async Task<CreatedSession?> RotateAsync(string? token, TimeSpan gracePeriod = default, CancellationToken cancellationToken = default)
    {
        if (await OwnerAsync(token, cancellationToken).ConfigureAwait(false) is not var (sessionId, userId))
        {
            return null;
        }

        var next = tokens.Create();
        var session = await Index(userId).RotateSessionAsync(sessionId, next.SessionId, gracePeriod)
            .WaitAsync(cancellationToken).ConfigureAwait(false);
        return session is null ? null : new CreatedSession(next, session);
    }

    /// <inheritdoc/>
    public async Task<bool> DeleteAsync(string? token, CancellationToken cancellationToken = default)
    {
        if (await OwnerAsync(token, cancellationToken).ConfigureAwait(false) is not var (sessionId, userId))
        {
            return false;
        }

        return await Index(userId).EndSessionAsync(sessionId, SessionEndReason.Deleted, onlyIfListed: false)
            .WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public Task<bool> RevokeAsync(string userId, string? sessionId, CancellationToken cancellationToken = default)
    {
        SessionIds.ValidateUserId(userId);
        return SessionToken.IsWellFormedSessionId(sessionId)
            ? Index(userId).EndSessionAsync(sessionId, SessionEndReason.Revoked, onlyIfListed: true).WaitAsync(cancellationToken)
            : Task.FromResult(false);
    }

    /// <inheritdoc/>
    public Task<SessionPage> ListByUserAsync(string userId, int limit = 100, string? cursor = null, CancellationToken cancellationToken = default)
    {
        SessionIds.ValidateUserId(userId);
        return Index(userId).ListAsync(limit, cursor).WaitAsync(cancellationToken);
    }

    /// <inheritdoc/>
    public Task<int> DeleteAllForUserAsync(string userId, string? exceptSessionId = null, CancellationToken cancellationToken = default)
    {
        SessionIds.ValidateUserId(userId);
        return Index(userId).EndAllAsync(exceptSessionId).WaitAsync(cancellationToken);
    }

    /// <inheritdoc/>
    public async Task<long> CountAsync(CancellationToken cancellationToken = default)
    {
        var shards = new Task<long>[ISessionCounterGrain.Shards];
        for (var i = 0; i < shards.Length; i++)
        {
            shards[i] = grains.GetGrain<ISessionCounterGrain>(i).GetAsync();
        }

        return (await Task.WhenAll(shards).WaitAsync(cancellationToken).ConfigureAwait(false)).Sum();
    }

    /// <inheritdoc/>
    public Task<int> CountForUserAsync(string userId, CancellationToken cancellationToken = default)
    {
        SessionIds.ValidateUserId(userId);
        return Index(userId).CountAsync().WaitAsync(cancellationToken);
    }

    /// <summary>The session id and user of a live token, or null: the first hop of operations the user index decides.</summary>
    private async Task<(string SessionId, string UserId)?> OwnerAsync(string? token, CancellationToken cancellationToken)
    {
        if (!tokens.TryParse(token, out var parsed))
        {
            return null;
        }

        var session = await Session(parsed.SessionId).PeekAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        return session is null ? null : (parsed.SessionId, session.UserId);
    }

    private ISessionGrain Session(string sessionId) => grains.GetGrain<ISessionGrain>(sessionId);

    private IUserSessionsGrain Index(string userId) => grains.GetGrain<IUserSessionsGrain>(userId);
}
