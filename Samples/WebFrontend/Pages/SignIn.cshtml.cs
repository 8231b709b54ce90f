using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace SessionGrains.WebFrontend.Pages;

public sealed class SignInModel : PageModel
{
    public async Task<IActionResult> OnPostAsync(string user)
    {
        if (string.IsNullOrWhiteSpace(user) || user.Length > 64)
        {
            return Page();
        }

        // Signing in creates a new session (a new token), also over a cookie of a live one, which the ticket store ends;
        // the session state (AddSession) starts afresh too: nothing from before the sign-in carries over.
        await FrontendCookies.EndStateAsync(HttpContext);
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, user.Trim()), new Claim(ClaimTypes.Name, user.Trim())], CookieAuthenticationDefaults.AuthenticationScheme);
        await HttpContext.SignInAsync(CookieAuthenticationDefaults.AuthenticationScheme, new ClaimsPrincipal(identity));
        return LocalRedirect("/");
    }
}
