namespace SessionGrains;

/// <summary>
/// One shard of the live-session count. Changes are kept in memory and written every few seconds and on
/// deactivation, so counting costs no storage write per create; a silo crash can lose the last few
/// seconds of changes to the count (never to sessions).
/// </summary>
[GrainType("sessiongrains.session-counter")]
internal sealed class SessionCounterGrain(
    [PersistentState("count", StorageNames.UserIndex)] IPersistentState<SessionCounterState> state)
    : Grain, ISessionCounterGrain
{
    private static readonly TimeSpan FlushInterval = TimeSpan.FromSeconds(5);
    private bool _dirty;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        this.RegisterGrainTimer(FlushAsync, FlushInterval, FlushInterval);
        return Task.CompletedTask;
    }

    public Task AddAsync(long delta)
    {
        state.State.Count += delta;
        _dirty = true;
        return Task.CompletedTask;
    }

    public Task<long> GetAsync() => Task.FromResult(Math.Max(0, state.State.Count));

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => FlushAsync();

    private async Task FlushAsync()
    {
        if (_dirty)
        {
            _dirty = false;
            await state.WriteStateAsync();
        }
    }
}
