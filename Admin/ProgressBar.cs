namespace SessionGrains.Admin;

/// <summary>
/// A one-line progress bar redrawn in place (<c>\r</c>) on a terminal: <c>[#####.....] 50/100 users</c>. The caller
/// decides whether there is a terminal; a redirected stream or <c>--json</c> gets no bar at all.
/// </summary>
internal sealed class ProgressBar(TextWriter terminal, int total, string unit)
{
    public const int DefaultWidth = 30;

    private readonly Lock _lock = new();
    private string _shown = "";
    private int _done;

    /// <summary>The bar for <paramref name="done"/> of <paramref name="total"/>: '#' for what is done, '.' for the rest.</summary>
    public static string Render(int done, int total, string unit, int width = DefaultWidth)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(done);
        ArgumentOutOfRangeException.ThrowIfNegative(total);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        var filled = total == 0 ? width : (int)((long)Math.Min(done, total) * width / total);
        return $"[{new string('#', filled)}{new string('.', width - filled)}] {done}/{total} {unit}";
    }

    /// <summary>Draws the bar with nothing done yet.</summary>
    public void Start()
    {
        lock (_lock)
        {
            Draw();
        }
    }

    /// <summary>Counts one more done and redraws; safe to call from several workers (the count only grows).</summary>
    public void Advance()
    {
        lock (_lock)
        {
            _done++;
            Draw();
        }
    }

    private void Draw()
    {
        _shown = Render(_done, total, unit);
        terminal.Write("\r" + _shown);
        terminal.Flush();
    }

    /// <summary>Erases the bar, so what follows starts on a clean line.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            if (_shown.Length > 0)
            {
                terminal.Write("\r" + new string(' ', _shown.Length) + "\r");
                terminal.Flush();
                _shown = "";
            }
        }
    }
}
