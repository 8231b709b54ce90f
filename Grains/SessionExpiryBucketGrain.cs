using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace SessionGrains;

/// <summary>
/// Where sessions wait for their expiry check. A session is filed, by id, in the bucket of its expiry
/// time (<see cref="SessionExpiryBuckets"/>); when the bucket's one reminder fires, every session in it is
/// asked to check itself (<see cref="ISessionGrain.CheckExpiryAsync"/>): an expired one ends and leaves
/// its index, a live one files itself in a later bucket. One reminder per bucket instead of one per session
/// keeps the reminder table (and the silos' copy of it) small at millions of sessions.
/// </summary>
/// <remarks>
/// Adds are written in batches (every second while they arrive, and on deactivation), not one write per
/// session. A silo crash can lose the last second of adds: those sessions are then cleaned up by the storage
/// TTL backstop and the index's own pruning instead, a little later. Cleanup only: expiry itself is decided
/// by the timestamps on every call.
/// </remarks>
[GrainType(GrainTypeNames.ExpiryBucket)]
internal sealed partial class SessionExpiryBucketGrain : Grain, ISessionExpiryBucketGrain, IRemindable
{
    private const string ReminderName = "due";

    // Sessions checked at once when the bucket fires: enough to overlap storage reads, few enough to pace them.
    private const int ChecksInFlight = 32;

    private static readonly TimeSpan FlushInterval = TimeSpan.FromSeconds(1);

    // Fallback period: a bucket whose checks failed (storage down) tries again this often.
    private static readonly TimeSpan RetryPeriod = TimeSpan.FromMinutes(1);

    private readonly IPersistentState<SessionExpiryBucketState> _state;
    private readonly TimeProvider _time;
    private readonly ILogger<SessionExpiryBucketGrain> _logger;
    private bool _unwritten;
    private bool _reminderArmed;

    public SessionExpiryBucketGrain(
        [PersistentState("bucket", StorageNames.UserIndex)] IPersistentState<SessionExpiryBucketState> state,
        IOptions<SessionGrainsOptions> options,
        ILogger<SessionExpiryBucketGrain> logger)
    {
        _state = state;
        _time = options.Value.TimeProvider;
        _logger = logger;
    }

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _state.State.DueAt = SessionExpiryBuckets.DueAt(this.GetPrimaryKeyString());
        _reminderArmed = _state.RecordExists;
        this.RegisterGrainTimer(FlushAsync, FlushInterval, FlushInterval);
        return Task.CompletedTask;
    }

    public async Task AddAsync(string sessionId)
    {
        if (!_state.State.SessionIds.Add(sessionId))
        {
            return;
        }

        _unwritten = true;
        if (!_reminderArmed)
        {
            var dueIn = _state.State.DueAt - _time.GetUtcNow();
            await this.RegisterOrUpdateReminder(ReminderName, dueIn > TimeSpan.Zero ? dueIn : TimeSpan.Zero, RetryPeriod);
            _reminderArmed = true;
        }
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        var failed = 0;
        foreach (var chunk in _state.State.SessionIds.ToList().Chunk(ChecksInFlight))
        {
            var checks = chunk.Select(id => GrainFactory.Session(id).CheckExpiryAsync()).ToArray();
            try
            {
                await Task.WhenAll(checks);
            }
            catch (Exception exception)
            {
                // The failed ones stay in the bucket; the reminder comes back after RetryPeriod.
                if (failed++ == 0)
                {
                    Log.CheckFailed(_logger, exception, this.GetPrimaryKeyString());
                }
            }

            for (var i = 0; i < chunk.Length; i++)
            {
                if (checks[i].IsCompletedSuccessfully)
                {
                    _state.State.SessionIds.Remove(chunk[i]);
                    _unwritten = true;
                }
            }
        }

        if (_state.State.SessionIds.Count > 0)
        {
            await FlushAsync();
            return;
        }

        await StorageConflicts.RetryAsync(_state.ClearStateAsync, _state.ReadStateAsync);
        _unwritten = false;
        if (await this.GetReminder(ReminderName) is { } reminder)
        {
            await this.UnregisterReminder(reminder);
        }

        _reminderArmed = false;
        DeactivateOnIdle();
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => FlushAsync();

    private Task FlushAsync() => !_unwritten ? Task.CompletedTask : StorageConflicts.RetryAsync(
        async () =>
        {
            await _state.WriteStateAsync();
            _unwritten = false;
        },
        async () =>
        {
            // Another activation wrote meanwhile (a duplicate after a silo failure): keep both sets of ids.
            var mine = _state.State.SessionIds;
            await _state.ReadStateAsync();
            _state.State.SessionIds.UnionWith(mine);
            _state.State.DueAt = SessionExpiryBuckets.DueAt(this.GetPrimaryKeyString());
        });

    private static partial class Log
    {
        [LoggerMessage(3001, LogLevel.Warning, "Expiry bucket {Bucket}: some sessions could not be checked; the bucket tries again in a minute.")]
        public static partial void CheckFailed(ILogger logger, Exception exception, string bucket);
    }
}

/// <summary>Which bucket a session's expiry check goes to. The one place that knows the bucket key format.</summary>
internal static class SessionExpiryBuckets
{
    /// <summary>Buckets per due time, so one bucket's state stays small and its checks spread over the silos.</summary>
    public const int Shards = 16;

    /// <summary>Files <paramref name="sessionId"/> to be checked at the first bucket boundary at or after <paramref name="dueAt"/>.</summary>
    public static Task FileAsync(IGrainFactory grains, string sessionId, DateTimeOffset dueAt, TimeSpan bucketWidth)
    {
        var widthTicks = bucketWidth.Ticks;
        var bucketTicks = (dueAt.UtcTicks + widthTicks - 1) / widthTicks * widthTicks;
        var bucketSeconds = new DateTimeOffset(bucketTicks, TimeSpan.Zero).ToUnixTimeSeconds();
        var shard = StableHash.Of(sessionId) % Shards;
        return grains.ExpiryBucket(string.Create(CultureInfo.InvariantCulture, $"{bucketSeconds}/{shard}")).AddAsync(sessionId);
    }

    /// <summary>The due time encoded in a bucket key.</summary>
    public static DateTimeOffset DueAt(string bucketKey) =>
        DateTimeOffset.FromUnixTimeSeconds(long.Parse(bucketKey.AsSpan(0, bucketKey.IndexOf('/', StringComparison.Ordinal)), CultureInfo.InvariantCulture));
}
