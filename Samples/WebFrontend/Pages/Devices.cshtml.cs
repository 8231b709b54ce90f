using Microsoft.AspNetCore.Mvc;

namespace SessionGrains.WebFrontend.Pages;

public sealed class DevicesModel(ISessionStore store) : FrontendPageModel(store)
{
    public Task OnGetAsync() => LoadSessionsAsync();

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
