using Microsoft.AspNetCore.Mvc;

namespace SessionGrains.WebFrontend.Pages;

public sealed class DevicesModel(ISessionStore store, IGrainFactory grains) : FrontendPageModel(store)
{
    /// <summary>
    /// The event log's position just before the list was read: the page's live updates start after it, so a device
    /// that signs in or out while the page loads is not missed (an event the list already shows changes nothing).
    /// </summary>
    public string EventsAfter { get; private set; } = SessionEvent.Beginning;

    public async Task OnGetAsync()
    {
        EventsAfter = await grains.GetGrain<ISessionEventFeedGrain>(0).EndAsync();
        await LoadSessionsAsync();
    }

    /// <summary>One device's row, for the page's script when a device signs in; only the signed-in user's own sessions.</summary>
    public async Task<IActionResult> OnGetRowAsync(string id)
    {
        await LoadSessionsAsync();
        return Sessions.FirstOrDefault(s => s.SessionId == id) is { } device
            ? Partial("_DeviceRow", new DeviceRowModel(this, device))
            : NotFound();
    }

    public async Task<IActionResult> OnPostSignOutDeviceAsync(string sessionId)
    {
        await Store.RevokeAsync(UserId, sessionId);
        return RedirectToPage();
    }

    public async Task<IActionResult> OnPostSignOutOthersAsync()
    {
        await Store.DeleteAllForUserAsync(UserId, CurrentSessionId);
        return RedirectToPage();
    }
}

/// <summary>What one row of the device list shows: a session, and the page that knows which one is this browser's.</summary>
public sealed record class DeviceRowModel(FrontendPageModel Page, SessionSummary Device);
