namespace SessionGrains;

/// <summary>
/// One shard of the live-session count. Changes are kept in memory and written every few seconds and on
/// deactivation, so counting costs no storage write per create; a silo crash can lose the last few
/// seconds of changes to the count (never to sessions).
/// </summary>
[GrainType(SiloGrainTypeNames.SessionCounter)]
internal sealed class SessionCounterGrain(
    [PersistentState("count", StorageNames.UserIndex)] IPersistentState<SessionCounterState> state)
    : Grain, ISessionCounterGrain
{
    private static readonly TimeSpan FlushInterval = TimeSpan.FromSeconds(5);

    // Changes since the last write: re-applied on top of the stored count after an etag conflict.
    private long _unwritten;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        this.RegisterGrainTimer(() => StorageConflicts.OnTimerAsync(FlushAsync), FlushInterval, FlushInterval);
        return Task.CompletedTask;
    }

    public Task AddAsync(long delta)
    {
        state.State.Count += delta;
        _unwritten += delta;
        return Task.CompletedTask;
    }

    public Task<long> GetAsync() => Task.FromResult(Math.Max(0, state.State.Count));

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => FlushAsync();

    private Task FlushAsync() => _unwritten == 0 ? Task.CompletedTask : StorageConflicts.RetryAsync(
        async () =>
        {
            await state.WriteStateAsync();
            _unwritten = 0;
        },
        async () =>
        {
            await state.ReadStateAsync();
            state.State.Count += _unwritten;
        });
}
