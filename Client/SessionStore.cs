using System.Runtime.CompilerServices;

namespace SessionGrains;

/// <summary>
/// <see cref="ISessionStore"/> over Orleans grains. Works the same from an external client
/// (<c>IClusterClient</c>) and inside a silo (<c>IGrainFactory</c>). The token never leaves this class:
/// grains receive only the session id derived from it, and a token that fails the
/// <see cref="SessionTokenCodec"/> check (shape, key, MAC) costs no grain call at all. Transient cluster
/// failures are retried briefly (<see cref="SessionStoreRetry"/>), then reported as
/// <see cref="SessionStoreUnavailableException"/>.
/// </summary>
/// <remarks>
/// A validation takes the path chosen when the store was registered (<see cref="IValidationPath"/>): straight
/// to its grain, or in batches (<see cref="ValidationBatcher"/>) from a frontend connected to a single silo;
/// <c>AddSessionStore</c> decides.
/// </remarks>
public sealed class SessionStore : ISessionStore
{
    private readonly IGrainFactory _grains;
    private readonly SessionTokenCodec _tokens;

    /// <summary>A store that sends every call on its own.</summary>
    /// <param name="grains">The Orleans client of a frontend, or the grain factory of a host app's silo.</param>
    /// <param name="tokens">The codec that checks and makes tokens.</param>
    public SessionStore(IGrainFactory grains, SessionTokenCodec tokens)
        : this(grains, tokens, new DirectValidation(grains))
    {
    }

    /// <summary>A store whose validations take <paramref name="validations"/>.</summary>
    internal SessionStore(IGrainFactory grains, SessionTokenCodec tokens, IValidationPath validations)
    {
        _grains = grains;
        _tokens = tokens;
        Validations = validations;
    }

    /// <summary>The path validations take, chosen when the store was made.</summary>
    internal IValidationPath Validations { get; }

    /// <inheritdoc/>
    public async Task<CreatedSession> CreateAsync(string userId, SessionCreateOptions? options = null, CancellationToken cancellationToken = default)
    {
        SessionIds.ValidateUserId(userId);
        var token = _tokens.Create();
        using var activity = SessionStoreActivities.Start("Create", token.SessionId);
        options ??= new SessionCreateOptions();
        if (ClientInfo.Normalize(options.Client) is var client && !ReferenceEquals(client, options.Client))
        {
            options = options with { Client = client }; // the index applies the same rule; this saves it the call
        }
        var result = await Call(() => Index(userId).CreateSessionAsync(token.SessionId, options), cancellationToken).ConfigureAwait(false);
        return result switch
        {
            { Session: { } session } => new CreatedSession(token, session),
            { RetryAfter: { } retryAfter } => throw new SessionThrottledException("Sessions for this user are being created too fast; new ones are refused for a while.", retryAfter),
            _ => throw new SessionLimitExceededException("The user is at the per-user session limit and the policy rejects new sessions."),
        };
    }

    /// <inheritdoc/>
    public Task<SessionInfo?> ValidateAsync(string? token, ClientInfo? client = null, CancellationToken cancellationToken = default)
    {
        client = ClientInfo.Normalize(client);
        if (!_tokens.TryParse(token, out var parsed))
        {
            return Task.FromResult<SessionInfo?>(null);
        }

        // An answer from the near cache's memory cannot fail: no retry policy, no activity (nothing left the process).
        return Validations is SessionNearCache cache && cache.TryAnswer(parsed.SessionId, client, out var session)
            ? Task.FromResult(session)
            : SessionStoreActivities.Traced("Validate", parsed.SessionId, () => Call(() => Validations.ValidateAsync(parsed.SessionId, client), cancellationToken));
    }

    /// <inheritdoc/>
    public async Task<SessionInfo?> UpdateAsync(string? token, SessionUpdate change, long? expectedVersion = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(change);
        if (!_tokens.TryParse(token, out var parsed))
        {
            return null;
        }

        using var activity = SessionStoreActivities.Start("Update", parsed.SessionId);
        var result = await Change(
            () => Validations is SessionNearCache cache
                ? cache.UpdateAsync(parsed.SessionId, change, expectedVersion)
                : Session(parsed.SessionId).UpdateAsync(change, expectedVersion),
            r => r.Session is null,
            cancellationToken).ConfigureAwait(false);
        return result.CurrentVersion is { } current
            ? throw new SessionVersionConflictException(expectedVersion ?? 0, current)
            : result.Session;
    }

    /// <inheritdoc/>
    public async Task<CreatedSession?> RotateAsync(string? token, TimeSpan gracePeriod = default, CancellationToken cancellationToken = default)
    {
        using var activity = SessionStoreActivities.Start("Rotate");
        if (await OwnerAsync(token, cancellationToken).ConfigureAwait(false) is not var (sessionId, userId))
        {
            return null;
        }

        activity?.SetTag(SessionStoreActivities.SessionTag, SessionIds.ForLog(sessionId));
        var next = _tokens.Create();
        var session = await Change(() => Index(userId).RotateSessionAsync(sessionId, next.SessionId, gracePeriod), s => s is null, cancellationToken).ConfigureAwait(false);
        return session is null ? null : new CreatedSession(next, session);
    }

    /// <inheritdoc/>
    public async Task<bool> DeleteAsync(string? token, CancellationToken cancellationToken = default)
    {
        using var activity = SessionStoreActivities.Start("Delete");
        if (await OwnerAsync(token, cancellationToken).ConfigureAwait(false) is not var (sessionId, userId))
        {
            return false;
        }

        activity?.SetTag(SessionStoreActivities.SessionTag, SessionIds.ForLog(sessionId));
        return await Change(() => Index(userId).EndSessionAsync(sessionId, SessionEndReason.Deleted, onlyIfListed: false), ended => !ended, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public Task<bool> RevokeAsync(string userId, string? sessionId, CancellationToken cancellationToken = default)
    {
        SessionIds.ValidateUserId(userId);
        return SessionIds.IsWellFormedSessionId(sessionId)
            ? SessionStoreActivities.Traced("Revoke", sessionId, () => Change(() => Index(userId).EndSessionAsync(sessionId, SessionEndReason.Revoked, onlyIfListed: true), ended => !ended, cancellationToken))
            : Task.FromResult(false);
    }

    /// <inheritdoc/>
    public Task<SessionPage> ListByUserAsync(string userId, int limit = 100, string? cursor = null, CancellationToken cancellationToken = default)
    {
        SessionIds.ValidateUserId(userId);
        return SessionStoreActivities.Traced("List", null, () => Call(() => Index(userId).ListAsync(limit, cursor), cancellationToken));
    }

    /// <inheritdoc/>
    public Task<int> DeleteAllForUserAsync(string userId, string? exceptSessionId = null, CancellationToken cancellationToken = default)
    {
        SessionIds.ValidateUserId(userId);
        return SessionStoreActivities.Traced("DeleteAll", null, () => Change(() => Index(userId).EndAllAsync(exceptSessionId), ended => ended == 0, cancellationToken));
    }

    /// <inheritdoc/>
    public async Task<long> CountAsync(CancellationToken cancellationToken = default)
    {
        var shards = Enumerable.Range(0, ISessionCounterGrain.Shards)
            .Select(shard => Call(() => _grains.GetGrain<ISessionCounterGrain>(shard).GetAsync(), cancellationToken));
        return (await Task.WhenAll(shards).ConfigureAwait(false)).Sum();
    }

    /// <inheritdoc/>
    public Task<int> CountForUserAsync(string userId, CancellationToken cancellationToken = default)
    {
        SessionIds.ValidateUserId(userId);
        return Call(() => Index(userId).CountAsync(), cancellationToken);
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<SessionEvent> SubscribeAsync(string? userId = null, string? afterPosition = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (userId is not null)
        {
            SessionIds.ValidateUserId(userId);
        }

        var feed = _grains.GetGrain<ISessionEventFeedGrain>(0);
        var after = afterPosition ?? await UntilAvailableAsync(feed.EndAsync, cancellationToken).ConfigureAwait(false);
        while (true)
        {
            // Each read waits at the silo until there is something to return (long polling).
            var batch = await UntilAvailableAsync(() => feed.ReadAsync(after, userId, EventsPerRead, EventWait), cancellationToken).ConfigureAwait(false);
            if (batch.Trimmed)
            {
                throw new SessionEventsTrimmedException(
                    "The event log no longer holds every event after this position: it keeps only the newest (SessionStore:Events:RetainedEvents). Rebuild from the store, then subscribe from now.",
                    after);
            }

            foreach (var e in batch.Events)
            {
                yield return e;
            }

            after = batch.Position;
        }
    }

    private const int EventsPerRead = 500;
    private static readonly TimeSpan EventWait = TimeSpan.FromSeconds(2); // well inside any response timeout a client would set
    private static readonly TimeSpan EventRetryDelay = TimeSpan.FromSeconds(1);

    /// <summary>A read of the event log, tried again each second while the cluster or its store is unavailable.</summary>
    private static async Task<T> UntilAvailableAsync<T>(Func<Task<T>> read, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                return await Call(read, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not (ArgumentException or OperationCanceledException))
            {
                // Unavailable (silos, gateway) or the store failing at the silo: nothing is lost, the position is kept.
                await Task.Delay(EventRetryDelay, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The session id and user of a live token, or null: the first hop of operations the user index decides.</summary>
    private async Task<(string SessionId, string UserId)?> OwnerAsync(string? token, CancellationToken cancellationToken)
    {
        if (!_tokens.TryParse(token, out var parsed))
        {
            return null;
        }

        var session = await Call(() => Session(parsed.SessionId).PeekAsync(), cancellationToken).ConfigureAwait(false);
        return session is null ? null : (parsed.SessionId, session.UserId);
    }

    private static Task<T> Call<T>(Func<Task<T>> call, CancellationToken cancellationToken) =>
        SessionStoreRetry.ExecuteAsync(call, cancellationToken);

    /// <summary>
    /// A change whose answer says what it found. Not retried after a timeout; after another transient failure, a retry
    /// that finds nothing to change (<paramref name="foundNothing"/>) cannot tell whether the first attempt changed it
    /// or nothing was there, and says so instead of answering "not found" (<see cref="SessionStoreRetry"/>).
    /// </summary>
    private static async Task<T> Change<T>(Func<Task<T>> call, Func<T, bool> foundNothing, CancellationToken cancellationToken)
    {
        var attempts = 0;
        var result = await SessionStoreRetry.ExecuteAsync(() => { attempts++; return call(); }, cancellationToken, isChange: true).ConfigureAwait(false);
        return attempts > 1 && foundNothing(result) ? throw SessionStoreRetry.MayHaveBeenApplied() : result;
    }

    private ISessionGrain Session(string sessionId) => _grains.Session(sessionId);

    private IUserSessionsGrain Index(string userId) => _grains.UserSessions(userId);
}
