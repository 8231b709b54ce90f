using Microsoft.Extensions.Logging;

namespace SessionGrains;

/// <summary>
/// Client and activity signals of a session: a change of network or User-Agent against the last request
/// seen, a burst of validations, many networks in a short time. Each is reported on the result, logged,
/// counted, and handled by its <see cref="SignalPolicy"/>.
/// </summary>
internal sealed partial class SessionGrain
{
    // Sliding windows live in memory only: a session idle long enough to be deactivated has no burst.
    private readonly Queue<DateTimeOffset> _recentValidations = new();
    private readonly Dictionary<string, DateTimeOffset> _recentNetworks = new(StringComparer.Ordinal);

    // A burst (or a run of networks) is logged and counted once, when it starts, though every request in it
    // is flagged: a hot session must not turn into a log line per request.
    private bool _inBurst;
    private bool _inManyNetworks;

    /// <summary>
    /// Looks at the request, moves the change counters on, and says what the policies decide. The observed
    /// session is slid to <paramref name="now"/>; <c>ClientChanged</c> says whether anything else changed (the
    /// client's details, the change counters), which the grain then has to keep.
    /// </summary>
    private (SessionInfo Observed, bool ClientChanged, SessionSignals Signals, SessionSignals Raised, SignalPolicy Action) ObserveRequest(SessionInfo session, ClientInfo? client, DateTimeOffset now)
    {
        var policies = _options.Signals;
        var signals = SessionSignals.None;
        var newSignals = SessionSignals.None;
        var action = SignalPolicy.Ignore;
        var ipChanges = session.IpChanges;
        var userAgentChanges = session.UserAgentChanges;

        void Raise(SessionSignals signal, SignalPolicy policy, bool isNew = true)
        {
            if (policy == SignalPolicy.Ignore)
            {
                return;
            }

            signals |= signal;
            action = (SignalPolicy)Math.Max((int)action, (int)policy);
            if (isNew)
            {
                newSignals |= signal;
                _metrics.Signals.Add(1, new KeyValuePair<string, object?>("signal", signal.ToString()));
            }
        }

        if (client?.IpAddress is { } ip)
        {
            var network = ClientNetworks.Of(ip, policies.IPv4PrefixLength, policies.IPv6PrefixLength);
            if (session.LastSeenFrom?.IpAddress is { } lastIp
                && network != ClientNetworks.Of(lastIp, policies.IPv4PrefixLength, policies.IPv6PrefixLength))
            {
                ipChanges++;
                Raise(SessionSignals.IpChanged, policies.IpChange);
            }

            _recentNetworks[network] = now;
            foreach (var (seen, at) in _recentNetworks)
            {
                if (now - at > policies.NetworksWindow)
                {
                    _recentNetworks.Remove(seen);
                }
            }

            var manyNetworks = _recentNetworks.Count > policies.NetworksThreshold;
            if (manyNetworks)
            {
                Raise(SessionSignals.ManyNetworks, policies.ManyNetworks, isNew: !_inManyNetworks);
            }

            _inManyNetworks = manyNetworks;
        }

        if (client?.UserAgent is { } userAgent && session.LastSeenFrom?.UserAgent is { } lastUserAgent
            && !string.Equals(userAgent, lastUserAgent, StringComparison.Ordinal))
        {
            userAgentChanges++;
            Raise(SessionSignals.UserAgentChanged, policies.UserAgentChange);
        }

        _recentValidations.Enqueue(now);
        while (_recentValidations.Count > 0 && now - _recentValidations.Peek() > policies.BurstWindow)
        {
            _recentValidations.Dequeue();
        }

        var burst = _recentValidations.Count > policies.BurstThreshold;
        if (burst)
        {
            Raise(SessionSignals.RequestBurst, policies.Burst, isNew: !_inBurst);
            while (_recentValidations.Count > policies.BurstThreshold + 1)
            {
                _recentValidations.Dequeue(); // the window never needs more entries than this
            }
        }

        _inBurst = burst;

        if (action == SignalPolicy.Throttle)
        {
            signals |= SessionSignals.Throttled;
        }

        if (newSignals != SessionSignals.None)
        {
            Log.Signals(_logger, SessionIds.ForLog(SessionId), newSignals, action);
        }

        // The same client details as last time keep the stored object (ClientInfo compares by value).
        var lastSeenFrom = client is null || client == session.LastSeenFrom ? session.LastSeenFrom : client;
        var clientChanged = !ReferenceEquals(lastSeenFrom, session.LastSeenFrom)
            || ipChanges != session.IpChanges || userAgentChanges != session.UserAgentChanges;
        var observed = session with
        {
            LastAccessedAt = now,
            LastSeenFrom = lastSeenFrom,
            IpChanges = ipChanges,
            UserAgentChanges = userAgentChanges,
        };
        return (observed, clientChanged, signals, newSignals, action);
    }

    /// <summary>
    /// Counts validations a frontend answered from memory towards the burst window, as made at <paramref name="at"/>;
    /// a burst they start is raised (logged, counted) here, as a request's would be.
    /// </summary>
    private void CountValidations(int count, DateTimeOffset at)
    {
        var now = _time.GetUtcNow();
        while (_recentValidations.Count > 0 && now - _recentValidations.Peek() > _options.Signals.BurstWindow)
        {
            _recentValidations.Dequeue();
        }

        // The newest threshold-and-one are all the window needs: the oldest of them says when a burst ends.
        var kept = _options.Signals.BurstThreshold + 1;
        for (var i = 0; i < count && i < kept; i++)
        {
            _recentValidations.Enqueue(at);
        }

        while (_recentValidations.Count > kept)
        {
            _recentValidations.Dequeue();
        }

        var burst = _recentValidations.Count > _options.Signals.BurstThreshold && _options.Signals.Burst != SignalPolicy.Ignore;
        if (burst && !_inBurst)
        {
            _metrics.Signals.Add(1, new KeyValuePair<string, object?>("signal", nameof(SessionSignals.RequestBurst)));
            Log.Signals(_logger, SessionIds.ForLog(SessionId), SessionSignals.RequestBurst, _options.Signals.Burst);
            PublishSignals(SessionSignals.RequestBurst, now);
        }

        _inBurst = burst;
    }

    /// <summary>The signals that last while a state lasts (a burst, many networks), flagged on answers from memory too.</summary>
    private SessionSignals LastingSignals()
    {
        var policies = _options.Signals;
        var signals = SessionSignals.None;
        if (policies.Burst != SignalPolicy.Ignore && _recentValidations.Count > policies.BurstThreshold)
        {
            signals |= SessionSignals.RequestBurst;
        }

        if (policies.ManyNetworks != SignalPolicy.Ignore && _inManyNetworks)
        {
            signals |= SessionSignals.ManyNetworks;
        }

        return signals;
    }

    /// <summary>The earliest time the lasting signals in <paramref name="signals"/> may end (their oldest entry leaves its window); null for none.</summary>
    private DateTimeOffset? LastingSignalsEnd(SessionSignals signals)
    {
        DateTimeOffset? end = null;
        if ((signals & SessionSignals.RequestBurst) != 0 && _recentValidations.Count > 0)
        {
            end = _recentValidations.Peek() + _options.Signals.BurstWindow;
        }

        if ((signals & SessionSignals.ManyNetworks) != 0)
        {
            foreach (var seen in _recentNetworks.Values)
            {
                var leaves = seen + _options.Signals.NetworksWindow;
                end = end is { } earlier && earlier < leaves ? earlier : leaves;
            }
        }

        return end;
    }

    /// <summary>
    /// How many validations a frontend may answer from memory under the lease it is given. A burst that throttles
    /// or revokes is decided on the request that starts it: up to the threshold, so that request reaches this grain.
    /// A burst that only warns needs no bound: the renewal that reports it raises it (within one lease), and answers
    /// from memory carry the flag from then on.
    /// </summary>
    private int LeaseBudget()
    {
        var policies = _options.Signals;
        var room = policies.BurstThreshold - _recentValidations.Count;
        return policies.Burst is SignalPolicy.Ignore or SignalPolicy.Warn ? int.MaxValue : room > 0 ? room : 0;
    }

    /// <summary>How long a throttled session should wait: until the oldest validation in the window leaves it.</summary>
    private TimeSpan ThrottleRetryAfter(DateTimeOffset now)
    {
        var wait = _recentValidations.Count > 0 ? _recentValidations.Peek() + _options.Signals.BurstWindow - now : TimeSpan.Zero;
        return wait > TimeSpan.FromSeconds(1) ? wait : TimeSpan.FromSeconds(1);
    }

    /// <summary>
    /// Appends a signal event. Not awaited: a validation never waits on the event log, and a signal is advice, not a
    /// change of the session; one that cannot be appended is logged and dropped.
    /// </summary>
    private void PublishSignals(SessionSignals raised, DateTimeOffset now)
    {
        if (raised == SessionSignals.None || !_options.Events.Enabled || _session is not { } session)
        {
            return;
        }

        var appending = _events.AppendAsync([new SessionEvent(SessionEventKind.Signal, session.UserId, SessionId, now) { Signals = raised }]);
        _ = appending.ContinueWith(
            (t, state) => Log.SignalEventLost((ILogger)state!, t.Exception!.GetBaseException().GetType().Name),
            _logger,
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    private static partial class Log
    {
        [LoggerMessage(1102, LogLevel.Warning, "A signal event could not be appended to the event log ({Error}); the signal is still logged and counted.")]
        public static partial void SignalEventLost(ILogger logger, string error);

        [LoggerMessage(1101, LogLevel.Warning, "Session {Session} raised {Signals}; policy: {Action}.")]
        public static partial void Signals(ILogger logger, string session, SessionSignals signals, SignalPolicy action);
    }
}
