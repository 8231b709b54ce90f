using System.Security.Claims;
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
