using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace SessionGrains;

/// <summary>
/// Writes the new session token into the cookie when <see cref="SessionGrainsTicketStore"/> replaced the request's
/// session during a sign-in: the cookie handler only knows the key it read, and a store cannot hand it another.
/// </summary>
internal sealed class ReissuedKeyCookieManager(ICookieManager inner, CookieAuthenticationOptions cookie) : ICookieManager
{
    public string? GetRequestCookie(HttpContext context, string key) => inner.GetRequestCookie(context, key);

    public void DeleteCookie(HttpContext context, string key, CookieOptions options) => inner.DeleteCookie(context, key, options);

    public void AppendResponseCookie(HttpContext context, string key, string? value, CookieOptions options) =>
        inner.AppendResponseCookie(context, key, value is not null && SessionGrainsTicketStore.HasReissuedKeys(context) ? Reissue(context, value) : value, options);

    private string Reissue(HttpContext context, string value)
    {
        // The same purpose the handler protects with (a TLS token binding, where a server offers one).
        var binding = context.Features.Get<ITlsTokenBindingFeature>()?.GetProvidedTokenBindingId() is { } id ? Convert.ToBase64String(id) : null;
        if (cookie.TicketDataFormat.Unprotect(value, binding) is not { } ticket)
        {
            return value;
        }

        var replaced = false;
        var principal = new ClaimsPrincipal();
        foreach (var identity in ticket.Principal.Identities)
        {
            var copy = new ClaimsIdentity(identity.AuthenticationType, identity.NameClaimType, identity.RoleClaimType);
            foreach (var claim in identity.Claims)
            {
                if (SessionGrainsTicketStore.ReissuedKey(context, claim.Value) is { } current)
                {
                    copy.AddClaim(new Claim(claim.Type, current, claim.ValueType, claim.Issuer, claim.OriginalIssuer));
                    replaced = true;
                }
                else
                {
                    copy.AddClaim(claim);
                }
            }

            principal.AddIdentity(copy);
        }

        return replaced ? cookie.TicketDataFormat.Protect(new AuthenticationTicket(principal, ticket.Properties, ticket.AuthenticationScheme), binding) : value;
    }
}
