using Microsoft.Extensions.Logging;

namespace SessionGrains;

/// <summary>Creation-burst throttling: sessions created unusually fast for one user.</summary>
internal sealed partial class UserSessionsGrain
{
    // Recent creates, for the creation-burst (credential stuffing) signal; in memory, like any rate window.
    private readonly Queue<DateTimeOffset> _recentCreates = new();
    private DateTimeOffset _creationCooldownEnds;

    /// <summary>
    /// Counts this create in the creation-burst window. Sessions created unusually fast (credential
    /// stuffing) are flagged; with policy <see cref="SignalPolicy.Throttle"/> the user gets no new session
    /// until the cool-down ends. Returns how long to wait, or null to go ahead.
    /// </summary>
    private TimeSpan? CreationCooldown(DateTimeOffset now)
    {
        var signals = _options.Signals;
        if (now < _creationCooldownEnds)
        {
            return _creationCooldownEnds - now;
        }

        _recentCreates.Enqueue(now);
        while (now - _recentCreates.Peek() > signals.CreationBurstWindow)
        {
            _recentCreates.Dequeue();
        }

        if (_recentCreates.Count <= signals.CreationBurstThreshold || signals.CreationBurst == SignalPolicy.Ignore)
        {
            return null;
        }

        if (signals.CreationBurst != SignalPolicy.Throttle)
        {
            // Flag the burst once, when it crosses the threshold, not on every create that follows.
            if (_recentCreates.Count == signals.CreationBurstThreshold + 1)
            {
                _metrics.Signals.Add(1, new KeyValuePair<string, object?>("signal", "CreationBurst"));
                Log.CreationBurst(_logger, SessionIds.UserForLog(UserId), _recentCreates.Count, signals.CreationBurstWindow, signals.CreationBurst);
            }

            return null;
        }

        _metrics.Signals.Add(1, new KeyValuePair<string, object?>("signal", "CreationBurst"));
        Log.CreationBurst(_logger, SessionIds.UserForLog(UserId), _recentCreates.Count, signals.CreationBurstWindow, signals.CreationBurst);

        _recentCreates.Clear();
        _creationCooldownEnds = now + signals.CreationCooldown;
        return signals.CreationCooldown;
    }

    private static partial class Log
    {
        [LoggerMessage(2002, LogLevel.Warning, "Sessions of {User} are created unusually fast ({Count} within {Window}); policy: {Policy}.")]
        public static partial void CreationBurst(ILogger logger, string user, int count, TimeSpan window, SignalPolicy policy);
    }
}
