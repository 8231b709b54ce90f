using Microsoft.Extensions.Options;

namespace SessionGrains;

/// <summary>What a cache entry persists.</summary>
[GenerateSerializer, Alias("sessiongrains.cache-entry-state")]
internal sealed class CacheEntryState : IExpiringState
{
    [Id(0)] public byte[]? Value { get; set; }

    [Id(1)] public DateTimeOffset? AbsoluteExpiresAt { get; set; }

    [Id(2)] public TimeSpan? SlidingExpiration { get; set; }

    [Id(3)] public DateTimeOffset LastAccessedAt { get; set; }

    /// <summary>When an entry last used at <paramref name="lastAccessedAt"/> ends unless used again; null for never.</summary>
    public DateTimeOffset? ExpiresAt(DateTimeOffset lastAccessedAt) => (SlidingExpiration, AbsoluteExpiresAt) switch
    {
        ({ } sliding, { } absolute) => SessionExpiry.ExpiresAt(lastAccessedAt, sliding, absolute),
        ({ } sliding, null) => lastAccessedAt + sliding,
        (null, { } absolute) => absolute,
        _ => null,
    };

    // The stored last access may lag the one in memory (lazy write), so the backstop waits a whole extra sliding period.
    public DateTimeOffset? DiscardableAfter => SlidingExpiration is { } sliding
        ? (AbsoluteExpiresAt is { } absolute && absolute < LastAccessedAt + (sliding * 2) ? absolute : LastAccessedAt + (sliding * 2))
        : AbsoluteExpiresAt;
}

/// <summary>
/// One <c>IDistributedCache</c> entry, answered from memory like a session: a sliding read moves the
/// expiration in memory and is written when a tenth of the sliding period has passed (and on deactivation).
/// No reminder: nothing else refers to a cache entry, and its stored key carries a TTL.
/// </summary>
[GrainType(SiloGrainTypeNames.CacheEntry)]
internal sealed class CacheEntryGrain(
    [PersistentState("entry", StorageNames.Sessions)] IPersistentState<CacheEntryState> state,
    IOptions<SessionGrainsOptions> options) : Grain, ICacheEntryGrain
{
    private readonly TimeProvider _time = options.Value.TimeProvider;
    private DateTimeOffset _lastAccessedAt;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _lastAccessedAt = state.State.LastAccessedAt;
        return Task.CompletedTask;
    }

    public async Task<byte[]?> GetAsync(bool slide)
    {
        var now = _time.GetUtcNow();
        if (state.State.Value is null)
        {
            return null;
        }

        if (Live(now) is false)
        {
            await RemoveAsync();
            return null;
        }

        if (slide && state.State.SlidingExpiration is { } sliding)
        {
            _lastAccessedAt = now;
            if (now - state.State.LastAccessedAt >= sliding * options.Value.LastAccessWriteFraction)
            {
                await WriteAccessAsync();
            }
        }

        return state.State.Value;
    }

    public Task SetAsync(CacheEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        state.State.Value = entry.Value;
        state.State.AbsoluteExpiresAt = entry.AbsoluteExpiresAt;
        state.State.SlidingExpiration = entry.SlidingExpiration;
        state.State.LastAccessedAt = _lastAccessedAt = _time.GetUtcNow();
        return state.WriteStateAsync();
    }

    public async Task RemoveAsync()
    {
        if (state.RecordExists)
        {
            await state.ClearStateAsync();
        }

        state.State = new CacheEntryState();
        DeactivateOnIdle();
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (state.State.Value is not null && _lastAccessedAt > state.State.LastAccessedAt)
        {
            await WriteAccessAsync();
        }
    }

    private bool Live(DateTimeOffset now) =>
        state.State.ExpiresAt(_lastAccessedAt) is not { } expiresAt || !SessionExpiry.IsExpired(now, expiresAt);

    private Task WriteAccessAsync()
    {
        state.State.LastAccessedAt = _lastAccessedAt;
        return state.WriteStateAsync();
    }
}
