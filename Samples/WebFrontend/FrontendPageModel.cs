using System.Globalization;
using Microsoft.AspNetCore.Html;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace SessionGrains.WebFrontend;

/// <summary>What every signed-in page knows: the user, their sessions, and which one is this browser's.</summary>
public abstract class FrontendPageModel(ISessionStore store) : PageModel
{
    protected ISessionStore Store { get; } = store;

    public string UserId => SessionGrainsTicketStore.UserId(User) ?? "";

    /// <summary>This browser's session id (public), put on the principal by the ticket store.</summary>
    public string? CurrentSessionId => User.FindFirst(SessionGrainsTicketStore.SessionIdClaim)?.Value;

    public IReadOnlyList<SessionSummary> Sessions { get; private set; } = [];

    public SessionSummary? Current => Sessions.FirstOrDefault(s => s.SessionId == CurrentSessionId);

    protected async Task LoadSessionsAsync() => Sessions = (await Store.ListByUserAsync(UserId)).Sessions;

    /// <summary>When the page was made: what "2 minutes ago" counts from.</summary>
    public DateTimeOffset Now { get; } = DateTimeOffset.UtcNow;

    /// <summary>
    /// A moment as people read it: "2 minutes ago" (or "in 29 minutes"), with the exact time on hover. The page's
    /// script turns that exact time into the browser's own time zone; without the script it stays UTC.
    /// </summary>
    public IHtmlContent Moment(DateTimeOffset at) =>
        new HtmlString($"<time datetime=\"{at.UtcDateTime.ToString("O", CultureInfo.InvariantCulture)}\" title=\"{at.UtcDateTime.ToString("u", CultureInfo.InvariantCulture)}\">{Relative(at, Now)}</time>");

    /// <summary>"just now", "1 minute ago", "3 hours ago", "in 29 minutes", "2 days ago": the largest whole unit.</summary>
    public static string Relative(DateTimeOffset at, DateTimeOffset now)
    {
        var span = now - at;
        var past = span >= TimeSpan.Zero;
        var length = past ? span : -span;
        if (length < TimeSpan.FromSeconds(45))
        {
            return past ? "just now" : "in a moment";
        }

        var (count, unit) = length switch
        {
            _ when length < TimeSpan.FromMinutes(59.5) => ((int)Math.Max(1, Math.Round(length.TotalMinutes, MidpointRounding.AwayFromZero)), "minute"),
            _ when length < TimeSpan.FromHours(23.5) => ((int)Math.Round(length.TotalHours, MidpointRounding.AwayFromZero), "hour"),
            _ => ((int)Math.Round(length.TotalDays, MidpointRounding.AwayFromZero), "day"),
        };
        var amount = count == 1 ? $"1 {unit}" : $"{count} {unit}s";
        return past ? $"{amount} ago" : $"in {amount}";
    }

    /// <summary>"Firefox on Linux" from a User-Agent; good enough for a device list.</summary>
    public static string Device(ClientInfo? client)
    {
        var agent = client?.UserAgent ?? "";
        string browser = agent switch
        {
            _ when agent.Contains("Edg/", StringComparison.Ordinal) => "Edge",
            _ when agent.Contains("Firefox/", StringComparison.Ordinal) => "Firefox",
            _ when agent.Contains("Chrome/", StringComparison.Ordinal) || agent.Contains("HeadlessChrome", StringComparison.Ordinal) => "Chrome",
            _ when agent.Contains("Safari/", StringComparison.Ordinal) => "Safari",
            _ when agent.Length > 0 => agent.Split('/')[0],
            _ => "Unknown browser",
        };
        string os = agent switch
        {
            _ when agent.Contains("Android", StringComparison.Ordinal) => "Android",
            _ when agent.Contains("iPhone", StringComparison.Ordinal) || agent.Contains("iPad", StringComparison.Ordinal) => "iOS",
            _ when agent.Contains("Windows", StringComparison.Ordinal) => "Windows",
            _ when agent.Contains("Mac OS", StringComparison.Ordinal) => "macOS",
            _ when agent.Contains("Linux", StringComparison.Ordinal) => "Linux",
            _ => "",
        };
        return os.Length > 0 ? $"{browser} on {os}" : browser;
    }
}
