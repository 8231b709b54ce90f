using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Http;

namespace SessionGrains;

/// <summary>
/// Keeps cookie-authentication tickets in session grains: the cookie carries only a session token; the
/// ticket is the session's payload, filed under the user id of the principal (<c>sub</c>, else
/// <see cref="ClaimTypes.NameIdentifier"/>). So every signed-in browser is a session of its user: it shows in
/// "your devices", counts towards the per-user limit, and a revocation (one device, or everywhere) signs that
/// browser out on its next request.
/// </summary>
public sealed class SessionGrainsTicketStore(ISessionStore store, TimeProvider time, IHttpContextAccessor? http = null) : ITicketStore
{
    /// <summary>Claim added to a retrieved principal: the public id of its session ("this device"), never the token.</summary>
    public const string SessionIdClaim = "sessiongrains:session-id";

    /// <inheritdoc/>
    public async Task<string> StoreAsync(AuthenticationTicket ticket)
    {
        ArgumentNullException.ThrowIfNull(ticket);
        var userId = UserId(ticket.Principal)
            ?? throw new InvalidOperationException("The principal has neither a 'sub' nor a NameIdentifier claim: the ticket store files sessions under the user id.");
        var created = await store.CreateAsync(userId, new SessionCreateOptions
        {
            Payload = TicketSerializer.Default.Serialize(ticket),
            AbsoluteTimeout = ticket.Properties.ExpiresUtc is { } expires && expires > time.GetUtcNow() ? expires - time.GetUtcNow() : null,
            Client = Client(),
        }).ConfigureAwait(false);
        return created.Token.Value;
    }

    /// <inheritdoc/>
    public async Task<AuthenticationTicket?> RetrieveAsync(string key)
    {
        var session = await store.ValidateAsync(key, Client()).ConfigureAwait(false);
        if (session is not { Payload.Length: > 0 } || TicketSerializer.Default.Deserialize(session.Payload.ToArray()) is not { } ticket)
        {
            return null;
        }

        if (ticket.Principal.Identity is ClaimsIdentity identity)
        {
            identity.AddClaim(new Claim(SessionIdClaim, session.SessionId));
        }

        return ticket;
    }

    /// <inheritdoc/>
    public Task RenewAsync(string key, AuthenticationTicket ticket)
    {
        ArgumentNullException.ThrowIfNull(ticket);
        return store.UpdateAsync(key, new SessionUpdate { Payload = TicketSerializer.Default.Serialize(ticket) });
    }

    /// <inheritdoc/>
    public Task RemoveAsync(string key) => store.DeleteAsync(key);

    /// <summary>The user id a principal's sessions are filed under: <c>sub</c>, else <see cref="ClaimTypes.NameIdentifier"/>.</summary>
    public static string? UserId(ClaimsPrincipal principal) =>
        principal?.FindFirst("sub")?.Value ?? principal?.FindFirst(ClaimTypes.NameIdentifier)?.Value;

    private ClientInfo? Client() => http?.HttpContext is { } context ? HttpClientInfo.From(context) : null;
}
