using System.Collections.Concurrent;
using System.Security.Claims;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace SessionGrains;

/// <summary>
/// Keeps cookie-authentication tickets in session grains: the cookie carries only a session token; the
/// ticket is the session's payload, filed under the user id of the principal (<c>sub</c>, else
/// <see cref="ClaimTypes.NameIdentifier"/>). So every signed-in browser is a session of its user: it shows in
/// "your devices", counts towards the per-user limit, and a revocation (one device, or everywhere) signs that
/// browser out on its next request.
/// </summary>
/// <remarks>
/// <para>Tickets are protected with ASP.NET Core Data Protection before they are stored: every instance that reads
/// the cookies needs the same key ring. A payload that does not unprotect (another key ring, or one stored in plain
/// text by an earlier version) is no ticket: that browser signs in again.</para>
/// <para>A sign-in never keeps a token that existed before it. The cookie handler calls <see cref="RenewAsync(string, AuthenticationTicket, HttpContext, CancellationToken)"/>
/// instead of <see cref="StoreAsync(AuthenticationTicket, HttpContext, CancellationToken)"/> when the request already
/// carries a live session cookie; only a sliding renewal of that very session by its own user updates it in place.
/// Anything else (a sign-in, or another user's principal) ends that session and creates a new one in the principal's
/// index, whose token the cookie then carries (registered by <c>AddSessionGrainsTicketStore</c>). Without that
/// registration the browser cannot be handed a new token: the same user's sign-in then keeps its session, and another
/// user's principal is refused (<see cref="InvalidOperationException"/>) after the session has been ended.</para>
/// </remarks>
/// <remarks>
/// <para>How cookie authentication's expiry becomes the session's timeouts (see <see cref="Timeouts"/>): a sliding
/// cookie (<see cref="CookieAuthenticationOptions.SlidingExpiration"/>, the default, and the ticket's
/// <see cref="AuthenticationProperties.AllowRefresh"/> not false) gets an idle timeout of its lifetime
/// (<see cref="CookieAuthenticationOptions.ExpireTimeSpan"/>, or the span its sign-in set) and the absolute lifetime of
/// <see cref="SessionGrainsTicketStoreOptions.AbsoluteTimeout"/> (by default the cluster's); a fixed one ends at its
/// <see cref="AuthenticationProperties.ExpiresUtc"/>, with no shorter idle timeout. A ticket without an expiry gets the
/// cluster's defaults.</para>
/// </remarks>
public sealed class SessionGrainsTicketStore(
    ISessionStore store,
    IDataProtectionProvider dataProtection,
    TimeProvider time,
    IHttpContextAccessor? http = null,
    IOptions<SessionGrainsTicketStoreOptions>? options = null) : ITicketStore
{
    /// <summary>Claim added to a retrieved principal: the public id of its session ("this device"), never the token.</summary>
    public const string SessionIdClaim = "sessiongrains:session-id";

    /// <summary>Purpose of the Data Protection protector of stored tickets (with the user id as a sub-purpose).</summary>
    public const string ProtectionPurpose = "SessionGrains.AspNetCore.SessionGrainsTicketStore.v1";

    // Put on a retrieved ticket's properties, which the handler copies into a sliding renewal but a sign-in never has.
    private const string RenewalOfItem = ".sessiongrains.renewal-of";

    private static readonly object ReissuedKeysItem = new();

    private readonly IDataProtector protector = dataProtection.CreateProtector(ProtectionPurpose);

    // Cookie schemes that do not slide, as their options said when they were configured (by AddSessionGrainsTicketStore).
    private readonly ConcurrentDictionary<string, bool> fixedSchemes = new(StringComparer.Ordinal);

    /// <summary>True when the cookie of a reissued key is rewritten (set by <c>AddSessionGrainsTicketStore</c>).</summary>
    internal bool ReissuesCookieKeys { get; set; }

    /// <summary>Takes note of a cookie scheme's options: whether its tickets slide (the store cannot ask for them, as they refer to it).</summary>
    internal void Uses(string scheme, CookieAuthenticationOptions cookie) => fixedSchemes[scheme] = !cookie.SlidingExpiration;

    /// <inheritdoc/>
    public Task<string> StoreAsync(AuthenticationTicket ticket) => StoreAsync(ticket, http?.HttpContext, CancellationToken.None);

    /// <inheritdoc/>
    public Task<string> StoreAsync(AuthenticationTicket ticket, CancellationToken cancellationToken) => StoreAsync(ticket, http?.HttpContext, cancellationToken);

    /// <inheritdoc/>
    public async Task<string> StoreAsync(AuthenticationTicket ticket, HttpContext? httpContext, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ticket);
        var key = await CreateAsync(ticket, RequiredUserId(ticket), httpContext, cancellationToken).ConfigureAwait(false);
        ReissuedKeys(httpContext)?.TryAdd(key, key);
        return key;
    }

    /// <inheritdoc/>
    public Task<AuthenticationTicket?> RetrieveAsync(string key) => RetrieveAsync(key, http?.HttpContext, CancellationToken.None);

    /// <inheritdoc/>
    public Task<AuthenticationTicket?> RetrieveAsync(string key, CancellationToken cancellationToken) => RetrieveAsync(key, http?.HttpContext, cancellationToken);

    /// <inheritdoc/>
    public async Task<AuthenticationTicket?> RetrieveAsync(string key, HttpContext? httpContext, CancellationToken cancellationToken)
    {
        var session = await store.ValidateAsync(key, Client(httpContext), cancellationToken).ConfigureAwait(false);
        if (session is null || Unprotect(session) is not { } ticket)
        {
            return null;
        }

        if (ticket.Principal.Identity is ClaimsIdentity identity)
        {
            identity.AddClaim(new Claim(SessionIdClaim, session.SessionId));
        }

        ticket.Properties.Items[RenewalOfItem] = session.SessionId;
        return ticket;
    }

    /// <inheritdoc/>
    public Task RenewAsync(string key, AuthenticationTicket ticket) => RenewAsync(key, ticket, http?.HttpContext, CancellationToken.None);

    /// <inheritdoc/>
    public Task RenewAsync(string key, AuthenticationTicket ticket, CancellationToken cancellationToken) => RenewAsync(key, ticket, http?.HttpContext, cancellationToken);

    /// <inheritdoc/>
    public async Task RenewAsync(string key, AuthenticationTicket ticket, HttpContext? httpContext, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ticket);
        var userId = RequiredUserId(ticket);
        var reissued = ReissuedKeys(httpContext);
        var current = reissued is not null && reissued.TryGetValue(key, out var issuedNow) ? issuedNow : null;
        var session = await store.ValidateAsync(current ?? key, Client(httpContext), cancellationToken).ConfigureAwait(false);

        // A key issued during this request is known to nobody else yet; otherwise only the session's own renewal updates it.
        var renewal = session is not null && session.UserId == userId
            && (current is not null || (ticket.Properties.Items.TryGetValue(RenewalOfItem, out var of) && of == session.SessionId));
        if (renewal)
        {
            await store.UpdateAsync(current ?? key, new SessionUpdate { Payload = Protect(ticket, userId) }, cancellationToken: cancellationToken).ConfigureAwait(false);
            return;
        }

        var canReissue = ReissuesCookieKeys && reissued is not null;
        if (!canReissue && session is not null && session.UserId == userId)
        {
            // No way to give the cookie a new token: the same user's sign-in keeps the session, as the framework intends.
            await store.UpdateAsync(key, new SessionUpdate { Payload = Protect(ticket, userId) }, cancellationToken: cancellationToken).ConfigureAwait(false);
            return;
        }

        if (session is not null)
        {
            await store.DeleteAsync(current ?? key, cancellationToken).ConfigureAwait(false);
        }
        else if (!canReissue)
        {
            return; // Nothing to renew, as before: the cookie names no live session and its next request signs in again.
        }

        if (!canReissue)
        {
            throw new InvalidOperationException("Refused to put another user's sign-in into an existing session, which has been ended: the cookie cannot be given a new token here (register the ticket store with AddSessionGrainsTicketStore). Signing in again creates a new session.");
        }

        reissued![key] = await CreateAsync(ticket, userId, httpContext, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public Task RemoveAsync(string key) => RemoveAsync(key, http?.HttpContext, CancellationToken.None);

    /// <inheritdoc/>
    public Task RemoveAsync(string key, CancellationToken cancellationToken) => RemoveAsync(key, http?.HttpContext, cancellationToken);

    /// <inheritdoc/>
    public Task RemoveAsync(string key, HttpContext? httpContext, CancellationToken cancellationToken) =>
        store.DeleteAsync(ReissuedKeys(httpContext) is { } reissued && reissued.TryGetValue(key, out var current) ? current : key, cancellationToken);

    /// <summary>The user id a principal's sessions are filed under: <c>sub</c>, else <see cref="ClaimTypes.NameIdentifier"/>.</summary>
    public static string? UserId(ClaimsPrincipal principal) =>
        principal?.FindFirst("sub")?.Value ?? principal?.FindFirst(ClaimTypes.NameIdentifier)?.Value;

    /// <summary>The key the cookie must carry instead of <paramref name="key"/> after this request's sign-in, if it was reissued.</summary>
    internal static string? ReissuedKey(HttpContext context, string key) =>
        ReissuedKeys(context) is { } reissued && reissued.TryGetValue(key, out var current) && current != key ? current : null;

    /// <summary>True when this request's sign-in replaced a session whose key the cookie still names.</summary>
    internal static bool HasReissuedKeys(HttpContext context) =>
        context.Items.TryGetValue(ReissuedKeysItem, out var keys) && keys is Dictionary<string, string> reissued && reissued.Any(pair => pair.Key != pair.Value);

    private async Task<string> CreateAsync(AuthenticationTicket ticket, string userId, HttpContext? httpContext, CancellationToken cancellationToken)
    {
        var (idle, absolute) = Timeouts(ticket, time.GetUtcNow());
        var created = await store.CreateAsync(userId, new SessionCreateOptions
        {
            Payload = Protect(ticket, userId),
            IdleTimeout = idle,
            AbsoluteTimeout = absolute,
            Client = Client(httpContext),
        }, cancellationToken).ConfigureAwait(false);
        return created.Token.Value;
    }

    /// <summary>
    /// The session timeouts of a ticket signed in at <paramref name="now"/> (null: the cluster's default). A sliding
    /// cookie is renewed by its handler while it is used, so it has no end of its own: it ends when it goes unused for
    /// its lifetime (the idle timeout), and at the absolute lifetime the store sets. A fixed cookie ends at its expiry.
    /// </summary>
    internal (TimeSpan? Idle, TimeSpan? Absolute) Timeouts(AuthenticationTicket ticket, DateTimeOffset now)
    {
        var properties = ticket.Properties;
        if (properties.ExpiresUtc is not { } expires || expires <= now)
        {
            return (null, null);
        }

        // The handler refreshes a ticket to the span it was issued with; a scheme not seen has cookie authentication's default: sliding.
        var sliding = (properties.AllowRefresh ?? true) && !fixedSchemes.GetValueOrDefault(ticket.AuthenticationScheme);
        return sliding
            ? (expires - (properties.IssuedUtc is { } issued && issued <= now ? issued : now), options?.Value.AbsoluteTimeout)
            : (expires - now, expires - now);
    }

    private static string RequiredUserId(AuthenticationTicket ticket) => UserId(ticket.Principal)
        ?? throw new InvalidOperationException("The principal has neither a 'sub' nor a NameIdentifier claim: the ticket store files sessions under the user id.");

    // The session id claim and the renewal marker describe this request's session; they are not part of what is stored.
    private byte[] Protect(AuthenticationTicket ticket, string userId)
    {
        var principal = new ClaimsPrincipal();
        foreach (var identity in ticket.Principal.Identities)
        {
            var copy = identity.Clone();
            foreach (var claim in copy.FindAll(SessionIdClaim).ToList())
            {
                copy.TryRemoveClaim(claim);
            }

            principal.AddIdentity(copy);
        }

        var properties = ticket.Properties.Clone();
        properties.Items.Remove(RenewalOfItem);
        return protector.CreateProtector(userId).Protect(TicketSerializer.Default.Serialize(new AuthenticationTicket(principal, properties, ticket.AuthenticationScheme)));
    }

    private AuthenticationTicket? Unprotect(SessionInfo session)
    {
        if (session.Payload.IsEmpty)
        {
            return null;
        }

        try
        {
            var ticket = TicketSerializer.Default.Deserialize(protector.CreateProtector(session.UserId).Unprotect(session.Payload.ToArray()));
            return ticket is not null && UserId(ticket.Principal) == session.UserId ? ticket : null;
        }
        catch (CryptographicException)
        {
            return null;
        }
    }

    private static Dictionary<string, string>? ReissuedKeys(HttpContext? context)
    {
        if (context is null)
        {
            return null;
        }

        if (context.Items.TryGetValue(ReissuedKeysItem, out var keys) && keys is Dictionary<string, string> existing)
        {
            return existing;
        }

        var created = new Dictionary<string, string>(StringComparer.Ordinal);
        context.Items[ReissuedKeysItem] = created;
        return created;
    }

    private static ClientInfo? Client(HttpContext? context) => context is null ? null : HttpClientInfo.From(context);
}
