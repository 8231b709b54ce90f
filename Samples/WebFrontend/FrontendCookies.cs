using Microsoft.AspNetCore.Authentication.Cookies;

namespace SessionGrains.WebFrontend;

/// <summary>
/// The demo's cookies. Over HTTPS their names carry the <c>__Host-</c> prefix (the browser then insists on Secure,
/// Path=/ and no Domain, so neither plain HTTP nor a sibling subdomain can plant one); over plain HTTP, as on
/// http://localhost, the bare name, since a browser refuses a <c>__Host-</c> cookie there. The name follows each
/// request's scheme: behind a proxy that ends TLS, forward the scheme (UseForwardedHeaders) so HTTPS is seen.
/// </summary>
public static class FrontendCookies
{
    public const string Authentication = "sessiongrains";

    public const string State = "sessiongrains-state";

    /// <summary>The name <paramref name="name"/> has on <paramref name="request"/>.</summary>
    public static string Name(HttpRequest request, string name) => request.IsHttps ? "__Host-" + name : name;

    /// <summary>Options of the session-state cookie (AddSession) for one scheme: Secure and prefixed over HTTPS.</summary>
    public static SessionOptions StateOptions(bool https) => new()
    {
        Cookie =
        {
            Name = https ? "__Host-" + State : State,
            Path = "/",
            HttpOnly = true,
            SameSite = SameSiteMode.Lax,
            SecurePolicy = https ? CookieSecurePolicy.Always : CookieSecurePolicy.SameAsRequest,
        },
    };

    /// <summary>
    /// Empties the session state and drops its cookie, at sign-in and sign-out: state from before (or a state cookie
    /// someone planted) never carries over, and the next request starts a new state session.
    /// </summary>
    public static async Task EndStateAsync(HttpContext context)
    {
        await context.Session.LoadAsync();
        context.Session.Clear();
        context.Response.Cookies.Delete(Name(context.Request, State), new CookieOptions { Path = "/", Secure = context.Request.IsHttps, HttpOnly = true, SameSite = SameSiteMode.Lax });
    }
}

/// <summary>Reads and writes the authentication cookie under <see cref="FrontendCookies.Name"/> of each request.</summary>
internal sealed class HostPrefixCookieManager(ICookieManager inner) : ICookieManager
{
    public string? GetRequestCookie(HttpContext context, string key) => inner.GetRequestCookie(context, FrontendCookies.Name(context.Request, key));

    public void AppendResponseCookie(HttpContext context, string key, string? value, CookieOptions options) =>
        inner.AppendResponseCookie(context, FrontendCookies.Name(context.Request, key), value, options);

    public void DeleteCookie(HttpContext context, string key, CookieOptions options) =>
        inner.DeleteCookie(context, FrontendCookies.Name(context.Request, key), options);
}
