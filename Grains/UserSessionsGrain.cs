using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Storage;

namespace SessionGrains;

/// <summary>
/// One user's session index. It is the only place that creates, rotates and ends sessions, and it
/// processes one request at a time, so the per-user limit and the list are race-free. It calls session
/// grains; sessions never wait on it (they send one-way reports), so there is no deadlock cycle.
/// Behaviours have files of their own: <c>UserSessionsGrain.Creation.cs</c> (the limit),
/// <c>.CreationBurst.cs</c>, <c>.Rotation.cs</c>, <c>.Paging.cs</c>, <c>.Pruning.cs</c>, <c>.Counter.cs</c> and <c>.EmptyIndex.cs</c>.
/// </summary>
[GrainType(GrainTypeNames.UserSessions)]
internal sealed partial class UserSessionsGrain : Grain, IUserSessionsGrain
{
    private readonly IPersistentState<UserSessionsState> _state;
    private readonly IGrainStorage _sessionStorage;
    private readonly SessionGrainsOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<UserSessionsGrain> _logger;
    private readonly SessionGrainsMetrics _metrics;
    private readonly ISessionEventLog _events;

    // Activity reports change only "last active"; they are written with the next structural change or on deactivation.
    private bool _activityUnsaved;

    // A call failed: memory may hold a change storage does not, whose events were dropped (SaveAsync). The next call
    // reads the index as stored first (UserSessionsGrain.EmptyIndex.cs).
    private bool _stale;

    public UserSessionsGrain(
        [PersistentState("index", StorageNames.UserIndex)] IPersistentState<UserSessionsState> state,
        [FromKeyedServices(StorageNames.Sessions)] IGrainStorage sessionStorage,
        IOptions<SessionGrainsOptions> options,
        SessionGrainsMetrics metrics,
        ISessionEventLog events,
        ILogger<UserSessionsGrain> logger)
    {
        _state = state;
        _sessionStorage = sessionStorage;
        _options = options.Value;
        _time = _options.TimeProvider;
        _metrics = metrics;
        _events = events;
        _logger = logger;
    }

    private string UserId => this.GetPrimaryKeyString();

    private Dictionary<string, SessionSummary> Sessions => _state.State.Sessions;

    public Task<bool> EndSessionAsync(string sessionId, SessionEndReason reason, bool onlyIfListed) =>
        StorageConflicts.RetryAsync(() => EndSessionCoreAsync(sessionId, reason, onlyIfListed), ReloadAsync);

    private async Task<bool> EndSessionCoreAsync(string sessionId, SessionEndReason reason, bool onlyIfListed)
    {
        var listed = Sessions.ContainsKey(sessionId);
        if (onlyIfListed && !listed)
        {
            return false;
        }

        var wasLive = await Lifecycle(sessionId).EndAsync(reason);
        if (wasLive || listed)
        {
            // Listed but no longer live: it expired and its end had not reached the index yet.
            RecordEnded(sessionId, wasLive ? reason : SessionEndReason.Expired);
        }

        if (Sessions.Remove(sessionId))
        {
            await SaveAsync(-1);
        }
        else
        {
            await PublishRestAsync(_state.State);
        }

        return wasLive;
    }

    public Task<int> EndAllAsync(string? exceptSessionId) =>
        StorageConflicts.RetryAsync(() => EndAllCoreAsync(exceptSessionId), ReloadAsync);

    private async Task<int> EndAllCoreAsync(string? exceptSessionId)
    {
        await PruneAndSaveAsync();
        var ending = Sessions.Keys.Where(id => id != exceptSessionId).ToList();
        if (ending.Count == 0)
        {
            return 0;
        }

        var results = await Task.WhenAll(ending.Select(id => Lifecycle(id).EndAsync(SessionEndReason.RevokedAll)));
        for (var i = 0; i < ending.Count; i++)
        {
            Sessions.Remove(ending[i]);
            RecordEnded(ending[i], results[i] ? SessionEndReason.RevokedAll : SessionEndReason.Expired);
        }

        await SaveAsync(-ending.Count);
        return results.Count(wasLive => wasLive);
    }

    public Task<int> CountAsync() =>
        StorageConflicts.RetryAsync(async () =>
        {
            await PruneAndSaveAsync();
            return Sessions.Count;
        }, ReloadAsync);

    public Task ReportActivityAsync(SessionSummary session)
    {
        ArgumentNullException.ThrowIfNull(session);
        if (Sessions.ContainsKey(session.SessionId))
        {
            Sessions[session.SessionId] = session;
            _activityUnsaved = true;
        }

        return Task.CompletedTask;
    }

    public Task ReportEndedAsync(string sessionId, SessionEndReason reason) =>
        StorageConflicts.RetryAsync(async () =>
        {
            if (Sessions.Remove(sessionId))
            {
                RecordEnded(sessionId, reason);
                await SaveAsync(-1);
            }
        }, ReloadAsync);

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_activityUnsaved && !_stale)
        {
            await SaveAsync(0);
        }
    }

    /// <summary>
    /// Writes the index (or deletes it when empty) with the events recorded for the change
    /// (<c>UserSessionsGrain.Events.cs</c>), and passes the change in live sessions to the counter.
    /// </summary>
    private async Task SaveAsync(int liveDelta)
    {
        // Clearing replaces the state object; the events recorded are on this one.
        var writing = _state.State;
        try
        {
            if (Sessions.Count == 0)
            {
                if (_state.RecordExists)
                {
                    await _state.ClearStateAsync();
                }
            }
            else
            {
                await _state.WriteStateAsync();
            }
        }
        catch
        {
            // The change did not happen (or it did and its events went with it): either way these must not ride on a later write.
            writing.Unpublished.Clear();

            // Nor may the change itself, which memory still holds: the call fails, and the next reads the index again.
            throw;
        }

        await PublishRestAsync(writing);
        _activityUnsaved = false;
        await ForwardToCounterAsync(liveDelta);
    }

    /// <summary>Reads the index again after an etag conflict; unsaved activity reports are estimates and may go.</summary>
    private async Task ReloadAsync()
    {
        await _state.ReadStateAsync();
        _activityUnsaved = false;
        _stale = false;
    }

    private ISessionGrain Session(string sessionId) => GrainFactory.Session(sessionId);

    private ISessionLifecycleGrain Lifecycle(string sessionId) => GrainFactory.SessionLifecycle(sessionId);
}
