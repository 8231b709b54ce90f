using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace SessionGrains;

/// <summary>
/// Leases: the grain, the session's single writer, lends frontends the right to answer validations from their
/// memory (<see cref="ISessionCacheObserver"/>) and calls every holder back before anything changes.
/// <list type="bullet">
/// <item>A lease is granted with a validation answer and lasts <see cref="SessionGrainsOptions.LeaseDuration"/>,
/// timed here from the grant and by the frontend from before it sent the request, so the frontend's copy always
/// runs out first, whatever the machines' clocks say.</item>
/// <item>Before an update, rotation, end or client change returns, <see cref="RecallLeasesAsync"/> waits for each
/// live holder to drop the session, or for its lease to run out when it does not answer.</item>
/// <item>Holders report the validations they answered (on renewal and recall), so sliding expiry and burst counts
/// stay exact; a session that looks idle-expired here is first checked with its holders.</item>
/// <item>A crash takes the lease table with it. The stored <see cref="SessionState.LeasesUntil"/> says until when
/// leases of an earlier activation may still be live, and a new activation's first change waits them out.</item>
/// </list>
/// </summary>
internal sealed partial class SessionGrain
{
    // Leases are real time whatever clock the grains read for expiry: they are about messages in flight.
    private static readonly TimeProvider LeaseClock = TimeProvider.System;

    // Slack over the holder's own timing for a holder that does not answer (clock rates differ a little).
    private static readonly TimeSpan LeaseMargin = TimeSpan.FromMilliseconds(50);

    // Holder -> end of its lease (LeaseClock timestamp). Made at the first lease: most sessions never have one.
    private Dictionary<ISessionCacheObserver, long>? _leases;

    // Set when this activation granted a lease: its writes keep the stored LeasesUntil ahead of its leases.
    private bool _grantedLeases;

    // Until when leases granted by an earlier activation (that may have crashed) can be live; null once waited out.
    private DateTimeOffset? _predecessorLeasesEnd;

    public Task<LeasedValidation> ValidateLeasedAsync(ClientInfo? client, LeaseRequest lease)
    {
        ArgumentNullException.ThrowIfNull(lease.Holder);
        if (!lease.Renewal && client != _session?.LastSeenFrom)
        {
            client = ClientInfo.Normalize(client);
        }

        if (!lease.Renewal)
        {
            _metrics.Validations.Add(1);
        }

        // Taken in once, outside the retry: a storage conflict must not count the reported validations twice.
        AccountCachedValidations(lease.Report);
        return StorageConflicts.RetryAsync(() => ValidateLeasedCoreAsync(client, lease), ReloadAsync);
    }

    private async Task<LeasedValidation> ValidateLeasedCoreAsync(ClientInfo? client, LeaseRequest lease)
    {
        SessionInfo? answer;
        if (lease.Renewal)
        {
            var now = _time.GetUtcNow();
            answer = _session is null || await IsExpiredAsync(now, lease.Holder) ? await EndIfExpiredAsync() : Live;
            if (answer is not null)
            {
                await PersistAccessIfDueAsync(now);
                if (LastingSignals() is var signals and not SessionSignals.None)
                {
                    answer = answer with { Signals = signals };
                }
            }
        }
        else
        {
            answer = await ValidateCoreAsync(client, lease.Holder);
        }

        // A forwarded answer (a rotated token in its grace window) belongs to another grain: nothing to lend.
        if (answer is null || _session is null || answer.SessionId != SessionId || _options.LeaseDuration <= TimeSpan.Zero)
        {
            return new LeasedValidation(answer, TimeSpan.Zero, 0);
        }

        await GrantAsync(lease.Holder);
        return new LeasedValidation(answer, _options.LeaseDuration, LeaseBudget(), LastingSignalsEnd(answer.Signals));
    }

    private async Task<SessionInfo?> EndIfExpiredAsync()
    {
        if (_session is not null)
        {
            await EndOnItsOwnAsync(SessionEndReason.Expired);
        }
        else
        {
            LeaveIfEmpty();
        }

        return null;
    }

    private async Task GrantAsync(ISessionCacheObserver holder)
    {
        var duration = _options.LeaseDuration;
        if ((_state.State.LeasesUntil ?? DateTimeOffset.MinValue) < LeaseClock.GetUtcNow() + duration)
        {
            // Stored before the lease is lent, so an activation after a crash knows to wait it out.
            _grantedLeases = true;
            await WriteAsync(Live!);
        }

        _grantedLeases = true;
        (_leases ??= [])[holder] = LeaseClock.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        _metrics.LeasesGranted.Add(1);
    }

    /// <summary>
    /// Until when the stored record says leases may be live: far enough ahead that the lazy last-access writes
    /// keep it ahead of the leases of a session in use, so granting costs no extra write.
    /// </summary>
    private DateTimeOffset? LeaseHorizon()
    {
        if (!_grantedLeases || _session is not { } session)
        {
            return _state.State.LeasesUntil;
        }

        var lease = _options.LeaseDuration;
        var lazyWrite = session.IdleTimeout * _options.LastAccessWriteFraction;
        return LeaseClock.GetUtcNow() + (lazyWrite > 12 * lease ? lazyWrite : 12 * lease) + lease;
    }

    /// <summary>
    /// Calls back every holder of a live lease (but <paramref name="except"/>, whose lease is replaced by the
    /// answer it is waiting for) and returns when each has dropped the session or its lease has run out.
    /// Their reports are taken in. Called before every change a frontend could otherwise answer around.
    /// </summary>
    private async Task RecallLeasesAsync(ISessionCacheObserver? except = null)
    {
        // Side by side with the recalls, so that a change waits one lease at most, never two.
        var predecessor = WaitOutPredecessorLeasesAsync();
        if (_leases is not { Count: > 0 } leases)
        {
            await predecessor;
            return;
        }

        var now = LeaseClock.GetTimestamp();
        var live = new List<(ISessionCacheObserver Holder, long EndsAt)>(leases.Count);
        foreach (var (holder, endsAt) in leases)
        {
            if (endsAt > now && !holder.Equals(except))
            {
                live.Add((holder, endsAt));
            }
        }

        leases.Clear();
        if (live.Count == 0)
        {
            await predecessor;
            return;
        }

        var reports = await Task.WhenAll(live.Select(lease => RecallAsync(lease.Holder, lease.EndsAt)));
        await predecessor;
        foreach (var report in reports)
        {
            AccountCachedValidations(report);
        }

        _metrics.LeaseRecallDuration.Record(LeaseClock.GetElapsedTime(now).TotalSeconds);
    }

    private async Task<LeaseReport> RecallAsync(ISessionCacheObserver holder, long endsAt)
    {
        var call = holder.RecallAsync(SessionId);
        using var timeout = new CancellationTokenSource();
        if (await Task.WhenAny(call, Task.Delay(Remaining(endsAt), timeout.Token)) == call)
        {
            timeout.Cancel();
            try
            {
                return await call;
            }
            catch (Exception exception)
            {
                // Unreachable is not dropped: a frontend cut off from the cluster answers until its lease ends.
                Log.RecallFailed(_logger, SessionIds.ForLog(SessionId), exception.GetType().Name);
                await Task.Delay(Remaining(endsAt));
            }
        }
        else
        {
            _ = call.ContinueWith(static t => t.Exception, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously);
        }

        _metrics.LeaseRecallTimeouts.Add(1);
        return default;
    }

    private static TimeSpan Remaining(long endsAt)
    {
        var remaining = LeaseClock.GetElapsedTime(LeaseClock.GetTimestamp(), endsAt) + LeaseMargin;
        return remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero;
    }

    /// <summary>A new activation's first change waits until leases an earlier activation may have lent have ended.</summary>
    private async Task WaitOutPredecessorLeasesAsync()
    {
        if (_predecessorLeasesEnd is { } end)
        {
            var wait = end - LeaseClock.GetUtcNow();
            if (wait > TimeSpan.Zero)
            {
                Log.WaitingOutLeases(_logger, SessionIds.ForLog(SessionId), wait);
                await Task.Delay(wait);
            }

            _predecessorLeasesEnd = null;
        }
    }

    /// <summary>Notes at activation until when an earlier activation's leases may be live: never past one lease from now.</summary>
    private void NotePredecessorLeases()
    {
        var now = LeaseClock.GetUtcNow();
        if (_state.State.LeasesUntil is { } until && until > now)
        {
            var oneLease = now + _options.LeaseDuration + LeaseMargin;
            _predecessorLeasesEnd = until < oneLease ? until : oneLease;
        }
    }

    /// <summary>At deactivation: no lease outlives the activation, and the next one need not wait.</summary>
    private async Task EndLeasesOnDeactivationAsync()
    {
        if (_lastSiloShutdown.IsUnderWay)
        {
            // No silo is left to answer a frontend: the stored LeasesUntil makes the next activation wait instead.
            return;
        }

        await RecallLeasesAsync();
        if (_state.State.LeasesUntil is not null && _session is not null)
        {
            _grantedLeases = false;
            _state.State.LeasesUntil = null;
            await WriteAsync(Live!);
        }
    }

    /// <summary>
    /// Whether the session is expired at <paramref name="now"/>. When only the idle timeout ends it and frontends
    /// hold leases, their unreported validations may have slid it: they are recalled and counted first.
    /// </summary>
    private async ValueTask<bool> IsExpiredAsync(DateTimeOffset now, ISessionCacheObserver? asking = null)
    {
        if (_session is not { } session || !SessionExpiry.IsExpired(now, SessionExpiry.ExpiresAt(_lastAccessedAt, session.IdleTimeout, session.AbsoluteExpiresAt)))
        {
            return false;
        }

        if (SessionExpiry.IsExpired(now, session.AbsoluteExpiresAt) || !HasLiveLeases(except: asking))
        {
            return true;
        }

        await RecallLeasesAsync(except: asking);
        return SessionExpiry.IsExpired(now, SessionExpiry.ExpiresAt(_lastAccessedAt, session.IdleTimeout, session.AbsoluteExpiresAt));
    }

    private bool HasLiveLeases(ISessionCacheObserver? except)
    {
        if (_leases is { Count: > 0 } leases)
        {
            var now = LeaseClock.GetTimestamp();
            foreach (var (holder, endsAt) in leases)
            {
                if (endsAt > now && !holder.Equals(except))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>Takes in validations a frontend answered from memory: they slide the session and count towards a burst.</summary>
    private void AccountCachedValidations(LeaseReport report)
    {
        if (report.LastAccessedAt is not { } at || _session is null)
        {
            return;
        }

        // The frontend's clock: never later than this grain's now, so a fast clock cannot lengthen a session.
        var now = _time.GetUtcNow();
        at = at < now ? at : now;
        if (at > _lastAccessedAt)
        {
            _lastAccessedAt = at;
        }

        CountValidations(report.Validations, at);
    }

    private static partial class Log
    {
        [LoggerMessage(1006, LogLevel.Debug, "Session {Session}: a lease holder could not be called back ({Failure}); waiting for its lease to end.")]
        public static partial void RecallFailed(ILogger logger, string session, string failure);

        [LoggerMessage(1007, LogLevel.Debug, "Session {Session}: waiting {Wait} for leases an earlier activation may have lent.")]
        public static partial void WaitingOutLeases(ILogger logger, string session, TimeSpan wait);
    }
}
