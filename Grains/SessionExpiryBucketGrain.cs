using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Storage;

namespace SessionGrains;

/// <summary>
/// Where sessions wait for their expiry check. A session is filed, by id, in the bucket of its expiry
/// time (<see cref="SessionExpiryBuckets"/>); when the bucket's one reminder fires, every session in it is
/// asked to check itself (<see cref="ISessionLifecycleGrain.CheckExpiryAsync"/>): an expired one ends and leaves
/// its index, a live one files itself in a later bucket. One reminder per bucket instead of one per session
/// keeps the reminder table (and the silos' copy of it) small at millions of sessions.
/// </summary>
/// <remarks>
/// Adds are written in batches (every second while they arrive, and on deactivation), and each batch is a
/// page of its own that is written once: a flush costs the ids added since the last one, not the whole
/// bucket again (at ten thousand creates a second a bucket holds tens of thousands of ids). The bucket's own
/// record counts its pages. A silo crash can lose the last second of adds: those sessions are then cleaned up
/// by the storage TTL backstop (on PostgreSQL, <see cref="PostgresSweepGrain"/>) and the index's own pruning
/// instead, a little later. Cleanup only: expiry
/// itself is decided by the timestamps on every call.
/// </remarks>
[GrainType(SiloGrainTypeNames.ExpiryBucket)]
internal sealed partial class SessionExpiryBucketGrain : Grain, ISessionExpiryBucketGrain, IRemindable
{
    private const string ReminderName = "due";
    private const string PageStateName = "bucket-page";

    private static readonly TimeSpan FlushInterval = TimeSpan.FromSeconds(1);

    // Fallback period: a bucket whose checks failed (storage down) tries again this often.
    private static readonly TimeSpan RetryPeriod = TimeSpan.FromMinutes(1);

    // The least due time a reminder is registered with. Orleans anchors ticks at StartAt + n * period: a reminder whose
    // start has passed by the time its timer is set (a due time of zero always has) skips to the next period, a minute
    // late. A bucket armed at or after its due time (an add that arrived late, or arming retried through an outage) would.
    private static readonly TimeSpan LeastDueTime = TimeSpan.FromSeconds(2);

    private readonly IPersistentState<SessionExpiryBucketState> _state;
    private readonly IGrainStorage _storage;
    private readonly TimeProvider _time;
    private readonly ILogger<SessionExpiryBucketGrain> _logger;

    // Every id filed here: the stored pages' and the unwritten ones.
    private readonly HashSet<string> _sessionIds = new(StringComparer.Ordinal);

    // Filed since the last flush: the next page.
    private HashSet<string> _unwritten = new(StringComparer.Ordinal);

    // The stored pages by number (with their etags, to delete them when the bucket is done).
    private readonly Dictionary<int, GrainState<SessionExpiryBucketPage>> _pages = [];

    // Page numbers below this were found written by someone else (see FlushAsync).
    private int _pagesTaken;
    private bool _reminderArmed;

    public SessionExpiryBucketGrain(
        [PersistentState("bucket", StorageNames.UserIndex)] IPersistentState<SessionExpiryBucketState> state,
        [FromKeyedServices(StorageNames.UserIndex)] IGrainStorage storage,
        IOptions<SessionGrainsOptions> options,
        ILogger<SessionExpiryBucketGrain> logger)
    {
        _state = state;
        _storage = storage;
        _time = options.Value.TimeProvider;
        _logger = logger;
    }

    private string BucketKey => this.GetPrimaryKeyString();

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _reminderArmed = _state.RecordExists;
        await LoadPagesAsync();
        this.RegisterGrainTimer(() => StorageConflicts.OnTimerAsync(ArmThenFlushAsync), FlushInterval, FlushInterval);
    }

    public async Task AddAsync(string sessionId)
    {
        if (!_sessionIds.Add(sessionId))
        {
            return;
        }

        _unwritten.Add(sessionId);
        await ArmAsync();
    }

    // The record is written only once the reminder is armed: an activation that finds a record takes the reminder as armed.
    private async Task ArmThenFlushAsync()
    {
        await ArmAsync();
        if (_reminderArmed)
        {
            await FlushAsync();
        }
    }

    /// <summary>
    /// Registers the bucket's reminder if it is not yet. While the reminder table is out (Redis down) the ids stay in
    /// memory and the flush timer tries again each second: a one-way AddAsync has no caller to fail to.
    /// </summary>
    private async Task ArmAsync()
    {
        if (_reminderArmed || _sessionIds.Count == 0)
        {
            return;
        }

        var dueIn = SessionExpiryBuckets.DueAt(BucketKey) - _time.GetUtcNow();
        try
        {
            await this.RegisterOrUpdateReminder(ReminderName, dueIn > LeastDueTime ? dueIn : LeastDueTime, RetryPeriod);
            _reminderArmed = true;
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            Log.NotArmed(_logger, BucketKey, exception.GetType().Name);
        }
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        // The failed ones stay in the bucket; the reminder comes back after RetryPeriod.
        var checking = _sessionIds.ToList();
        var (failed, firstFailure) = await ExpiryChecks.RunAsync(GrainFactory, checking);
        if (firstFailure is not null)
        {
            Log.CheckFailed(_logger, firstFailure, BucketKey);
        }

        _sessionIds.ExceptWith(checking.Except(failed, StringComparer.Ordinal));

        // What is left (checks that failed) is written again as one new page before the pages it came from are
        // deleted: a crash in between leaves an id in two pages, never in none.
        var done = _pages.Keys.ToList();
        _unwritten = new HashSet<string>(_sessionIds, StringComparer.Ordinal);
        await FlushAsync();
        await DeletePagesAsync(done);
        if (_sessionIds.Count > 0)
        {
            return;
        }

        await StorageConflicts.RetryAsync(_state.ClearStateAsync, _state.ReadStateAsync);
        if (await this.GetReminder(ReminderName) is { } reminder)
        {
            await this.UnregisterReminder(reminder);
        }

        _reminderArmed = false;
        DeactivateOnIdle();
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => ArmThenFlushAsync();

    /// <summary>Writes the ids filed since the last flush as the next page, then counts it in the bucket's record.</summary>
    private Task FlushAsync() => _unwritten.Count == 0 ? Task.CompletedTask : StorageConflicts.RetryAsync(
        async () =>
        {
            var dueAt = SessionExpiryBuckets.DueAt(BucketKey);
            var page = new GrainState<SessionExpiryBucketPage>(new SessionExpiryBucketPage { SessionIds = _unwritten, DueAt = dueAt });

            // No etag: the page must not exist yet. Another activation of this bucket (a duplicate for a moment
            // after a silo failure) may have written this page number: then reload and take the next one. A
            // retry after the page was written writes its ids again in a later page; a duplicate id is harmless.
            // A page number found taken is never tried again: a write that timed out in an outage may have been
            // applied after all, and that page is counted nowhere (its TTL removes it).
            var number = Math.Max(Math.Max(_state.State.Pages, _pages.Count == 0 ? 0 : _pages.Keys.Max() + 1), _pagesTaken);
            try
            {
                await _storage.WriteStateAsync(PageStateName, PageId(number), page);
            }
            catch (InconsistentStateException)
            {
                _pagesTaken = number + 1;
                throw;
            }

            _pages[number] = page;
            _state.State.Pages = number + 1;
            _state.State.DueAt = dueAt;
            _state.State.SessionIds.Clear();
            await _state.WriteStateAsync();
            _unwritten = new HashSet<string>(StringComparer.Ordinal);
        },
        async () =>
        {
            await _state.ReadStateAsync();
            await LoadPagesAsync();
        });

    /// <summary>
    /// Reads the pages the bucket's record counts that are not in memory yet. Ids in the record itself
    /// (buckets stored before pages existed) are kept unwritten, so the next flush moves them to a page.
    /// </summary>
    private async Task LoadPagesAsync()
    {
        foreach (var id in _state.State.SessionIds)
        {
            if (_sessionIds.Add(id))
            {
                _unwritten.Add(id);
            }
        }

        var missing = Enumerable.Range(0, _state.State.Pages)
            .Where(number => !_pages.ContainsKey(number))
            .ToDictionary(number => number, _ => new GrainState<SessionExpiryBucketPage>(new SessionExpiryBucketPage()));
        await Task.WhenAll(missing.Select(page => _storage.ReadStateAsync(PageStateName, PageId(page.Key), page.Value)));
        foreach (var (number, page) in missing)
        {
            _pages[number] = page;
            if (page.State is { } stored)
            {
                _sessionIds.UnionWith(stored.SessionIds);
            }
        }
    }

    /// <summary>Deletes these stored pages (one already gone is fine).</summary>
    private async Task DeletePagesAsync(IReadOnlyList<int> numbers)
    {
        await Task.WhenAll(numbers.Select(number => DeletePageAsync(number, _pages[number])));
        foreach (var number in numbers)
        {
            _pages.Remove(number);
        }
    }

    private async Task DeletePageAsync(int number, GrainState<SessionExpiryBucketPage> page)
    {
        try
        {
            await _storage.ClearStateAsync(PageStateName, PageId(number), page);
        }
        catch (InconsistentStateException)
        {
            // Deleted by another activation of this bucket already.
        }
    }

    private GrainId PageId(int number) =>
        GrainId.Create(SiloGrainTypeNames.ExpiryBucketPage, string.Create(CultureInfo.InvariantCulture, $"{BucketKey}/{number}"));

    private static partial class Log
    {
        [LoggerMessage(3002, LogLevel.Warning, "Expiry bucket {Bucket} could not register its reminder ({Reason}); it tries again in a second.")]
        public static partial void NotArmed(ILogger logger, string bucket, string reason);

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
    public static Task FileAsync(IGrainFactory grains, string sessionId, DateTimeOffset dueAt, TimeSpan bucketWidth) =>
        grains.ExpiryBucket(KeyOf(sessionId, dueAt, bucketWidth)).AddAsync(sessionId);

    /// <summary>The key of the bucket <paramref name="sessionId"/> is filed in for a check at <paramref name="dueAt"/>.</summary>
    public static string KeyOf(string sessionId, DateTimeOffset dueAt, TimeSpan bucketWidth)
    {
        var widthTicks = bucketWidth.Ticks;
        var bucketTicks = (dueAt.UtcTicks + widthTicks - 1) / widthTicks * widthTicks;
        var bucketSeconds = new DateTimeOffset(bucketTicks, TimeSpan.Zero).ToUnixTimeSeconds();
        var shard = StableHash.Of(sessionId) % Shards;
        return string.Create(CultureInfo.InvariantCulture, $"{bucketSeconds}/{shard}");
    }

    // A bucket whose checks keep failing (storage down) is retried for this long before its entries may go.
    private static readonly TimeSpan RetryHorizon = TimeSpan.FromDays(1);

    /// <summary>When a bucket's stored entries (record and pages) may be dropped by the storage backstop.</summary>
    public static DateTimeOffset DiscardableAfter(DateTimeOffset dueAt) => dueAt + RetryHorizon;

    /// <summary>The due time encoded in a bucket key.</summary>
    public static DateTimeOffset DueAt(string bucketKey) =>
        DateTimeOffset.FromUnixTimeSeconds(long.Parse(bucketKey.AsSpan(0, bucketKey.IndexOf('/', StringComparison.Ordinal)), CultureInfo.InvariantCulture));
}
