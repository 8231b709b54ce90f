namespace SessionGrains.Silo;

/// <summary>
/// Failures per caller in one-minute windows: the counting both HTTP limiters share (failed token checks, refused API
/// keys). Bounded, so no stream of junk grows the silo's memory: once it holds <c>maxEntries</c> callers, ended windows
/// are swept (at most once a second) and callers still without an entry share one overflow budget. Not thread-safe: its
/// owner locks.
/// </summary>
internal sealed class CallerFailureWindows(int maxEntries)
{
    /// <summary>How long a caller's failures count.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    private const string OverflowCaller = "(overflow)";

    private readonly Dictionary<string, (DateTimeOffset Start, int Failures)> _callers = new(StringComparer.Ordinal);
    private DateTimeOffset _lastSweep;

    /// <summary>Callers remembered now.</summary>
    public int Count => _callers.Count;

    /// <summary>The caller's failures in its current window and when that window ends; null when it has none.</summary>
    public (int Failures, DateTimeOffset Ends)? Current(string caller, DateTimeOffset now) =>
        _callers.TryGetValue(Tracked(caller), out var window) && window.Start + Window > now
            ? (window.Failures, window.Start + Window)
            : null;

    /// <summary>Counts one failure of the caller; its failures in the window so far and when the window ends.</summary>
    public (int Failures, DateTimeOffset Ends) Add(string caller, DateTimeOffset now)
    {
        SweepWhenFull(now);
        var key = Tracked(caller);
        var window = _callers.TryGetValue(key, out var current) && current.Start + Window > now ? current : (Start: now, Failures: 0);
        window.Failures++;
        _callers[key] = window;
        return (window.Failures, window.Start + Window);
    }

    // A caller without an entry shares the overflow budget only while the table is full.
    private string Tracked(string caller) => _callers.ContainsKey(caller) || _callers.Count < maxEntries ? caller : OverflowCaller;

    private void SweepWhenFull(DateTimeOffset now)
    {
        if (_callers.Count < maxEntries || now - _lastSweep < TimeSpan.FromSeconds(1))
        {
            return;
        }

        _lastSweep = now;
        foreach (var (caller, window) in _callers)
        {
            if (window.Start + Window <= now)
            {
                _callers.Remove(caller);
            }
        }
    }
}
