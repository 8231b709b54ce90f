using System.Security.Claims;
using System.Text;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>Cookie-authentication tickets kept in session grains: listed under their user, revocable, renewed by sliding, protected at rest.</summary>
[Collection(RedisClusterCollection.Name)]
public sealed class TicketStoreTests(RedisClusterFixture fixture)
{
    private SessionCluster Cluster => fixture.Cluster;

    // One key ring for the whole class, as the instances of a frontend share one.
    private static readonly IDataProtectionProvider Protection = new EphemeralDataProtectionProvider();

    private SessionGrainsTicketStore Tickets => new(Cluster.Store, Protection, Cluster.Time);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static AuthenticationTicket Ticket(string user, string claimType = ClaimTypes.NameIdentifier) =>
        new(new ClaimsPrincipal(new ClaimsIdentity([new Claim(claimType, user), new Claim(ClaimTypes.Name, "Display " + user)], "Cookies")), "Cookies");

    [Fact]
    public async Task A_stored_ticket_is_a_session_of_its_user_and_comes_back_whole()
    {
        var user = "ticket-" + Guid.NewGuid().ToString("N")[..8];
        var key = await Tickets.StoreAsync(Ticket(user), Ct);

        var ticket = await Tickets.RetrieveAsync(key, Ct);

        Assert.Equal("Display " + user, ticket!.Principal.Identity!.Name);
        var listed = await Cluster.Store.ListByUserAsync(user, cancellationToken: Ct);
        Assert.Single(listed.Sessions);
        Assert.StartsWith(SessionToken.Prefix, key, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_sub_claim_names_the_user_when_present()
    {
        var user = "sub-" + Guid.NewGuid().ToString("N")[..8];
        await Tickets.StoreAsync(Ticket(user, "sub"), Ct);
        Assert.Equal(1, await Cluster.Store.CountForUserAsync(user, Ct));
    }

    [Fact]
    public async Task Revoking_the_session_elsewhere_makes_the_ticket_disappear()
    {
        var user = "revoked-" + Guid.NewGuid().ToString("N")[..8];
        var one = await Tickets.StoreAsync(Ticket(user), Ct);
        var other = await Tickets.StoreAsync(Ticket(user), Ct);
        var oneId = (await Cluster.Store.ValidateAsync(one, cancellationToken: Ct))!.SessionId;

        Assert.True(await Cluster.Store.RevokeAsync(user, oneId, Ct));
        Assert.Null(await Tickets.RetrieveAsync(one, Ct));
        Assert.NotNull(await Tickets.RetrieveAsync(other, Ct));

        await Cluster.Store.DeleteAllForUserAsync(user, cancellationToken: Ct);
        Assert.Null(await Tickets.RetrieveAsync(other, Ct));
    }

    [Fact]
    public async Task Renew_replaces_the_ticket_and_slides_and_remove_signs_out()
    {
        var user = "renew-" + Guid.NewGuid().ToString("N")[..8];
        var key = await Tickets.StoreAsync(Ticket(user), Ct);
        Cluster.Time.Advance(TimeSpan.FromMinutes(20));

        // A sliding renewal: the handler renews the ticket it retrieved (a copy of it, with new times).
        var retrieved = await Tickets.RetrieveAsync(key, Ct);
        ((ClaimsIdentity)retrieved!.Principal.Identity!).AddClaim(new Claim("renewed", "yes"));
        await Tickets.RenewAsync(key, retrieved, Ct);
        Cluster.Time.Advance(TimeSpan.FromMinutes(20)); // 40 min after sign-in, 20 after the renewal: still inside 30 min idle
        var renewed = await Tickets.RetrieveAsync(key, Ct);
        Assert.Equal("yes", renewed!.Principal.FindFirst("renewed")?.Value);
        Assert.Single(renewed.Principal.FindAll(SessionGrainsTicketStore.SessionIdClaim)); // this request's claim is not stored

        await Tickets.RemoveAsync(key, Ct);
        Assert.Null(await Tickets.RetrieveAsync(key, Ct));
        Assert.Equal(0, await Cluster.Store.CountForUserAsync(user, Ct));
    }

    [Fact]
    public async Task Renewing_a_session_with_another_users_principal_is_refused_and_ends_the_session()
    {
        var owner = "owner-" + Guid.NewGuid().ToString("N")[..8];
        var other = "other-" + Guid.NewGuid().ToString("N")[..8];
        var key = await Tickets.StoreAsync(Ticket(owner), Ct);

        await Assert.ThrowsAsync<InvalidOperationException>(() => Tickets.RenewAsync(key, Ticket(other), Ct));

        Assert.Null(await Tickets.RetrieveAsync(key, Ct));
        Assert.Equal(0, await Cluster.Store.CountForUserAsync(owner, Ct));
        Assert.Equal(0, await Cluster.Store.CountForUserAsync(other, Ct));
    }

    [Fact]
    public async Task A_renewal_that_swaps_in_another_users_principal_is_refused_too()
    {
        var owner = "swap-" + Guid.NewGuid().ToString("N")[..8];
        var key = await Tickets.StoreAsync(Ticket(owner), Ct);
        var retrieved = await Tickets.RetrieveAsync(key, Ct);

        // Its properties say "renewal of this session", its principal is someone else.
        var swapped = new AuthenticationTicket(Ticket("intruder-" + owner).Principal, retrieved!.Properties, retrieved.AuthenticationScheme);
        await Assert.ThrowsAsync<InvalidOperationException>(() => Tickets.RenewAsync(key, swapped, Ct));

        Assert.Null(await Tickets.RetrieveAsync(key, Ct));
    }

    [Fact]
    public async Task A_stored_ticket_is_not_plain_text_and_unprotects_only_with_the_key_ring_and_for_its_user()
    {
        var user = "protected-" + Guid.NewGuid().ToString("N")[..8];
        var secret = "refresh-token-" + Guid.NewGuid().ToString("N");
        var ticket = Ticket(user);
        ticket.Properties.StoreTokens([new AuthenticationToken { Name = "refresh_token", Value = secret }]);
        var key = await Tickets.StoreAsync(ticket, Ct);

        var payload = (await Cluster.Store.ValidateAsync(key, cancellationToken: Ct))!.Payload.ToArray();
        Assert.NotEmpty(payload);
        Assert.Equal(-1, payload.AsSpan().IndexOf(Encoding.UTF8.GetBytes("Display " + user)));
        Assert.Equal(-1, payload.AsSpan().IndexOf(Encoding.UTF8.GetBytes(secret)));
        Assert.Equal(secret, (await Tickets.RetrieveAsync(key, Ct))!.Properties.GetTokenValue("refresh_token"));

        // Another key ring (an instance that does not share the keys) reads no ticket: that browser signs in again.
        Assert.Null(await new SessionGrainsTicketStore(Cluster.Store, new EphemeralDataProtectionProvider(), Cluster.Time).RetrieveAsync(key, Ct));

        // The same bytes planted in another user's session do not unprotect: the user id is part of the purpose.
        var planted = await Cluster.Store.CreateAsync("planted-" + user, new SessionCreateOptions { Payload = payload }, Ct);
        Assert.Null(await Tickets.RetrieveAsync(planted.Token.Value, Ct));
    }

    [Fact]
    public async Task A_plain_text_ticket_stored_by_an_earlier_version_is_no_ticket()
    {
        var user = "plain-" + Guid.NewGuid().ToString("N")[..8];
        var created = await Cluster.Store.CreateAsync(user, new SessionCreateOptions { Payload = TicketSerializer.Default.Serialize(Ticket(user)) }, Ct);

        Assert.Null(await Tickets.RetrieveAsync(created.Token.Value, Ct));
    }

    [Fact]
    public async Task A_principal_without_a_user_id_is_refused()
    {
        var anonymous = new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, "nobody")], "Cookies")), "Cookies");
        await Assert.ThrowsAsync<InvalidOperationException>(() => Tickets.StoreAsync(anonymous, Ct));
    }

    [Fact]
    public async Task A_sliding_cookie_keeps_its_session_while_unused_for_its_own_lifetime_not_the_stores_idle_default()
    {
        // As cookie authentication signs in with ExpireTimeSpan = 14 days and sliding expiration (its defaults).
        var user = "sliding-" + Guid.NewGuid().ToString("N")[..8];
        using var services = TicketServices(cookie => cookie.ExpireTimeSpan = TimeSpan.FromDays(14), o => o.AbsoluteTimeout = TimeSpan.FromDays(30));
        var tickets = services.GetRequiredService<SessionGrainsTicketStore>();
        var key = await tickets.StoreAsync(Signed(Ticket(user), TimeSpan.FromDays(14)), Ct);

        var session = (await Cluster.Store.ValidateAsync(key, cancellationToken: Ct))!;
        Assert.Equal(TimeSpan.FromDays(14), session.IdleTimeout);
        Assert.Equal(session.CreatedAt + TimeSpan.FromDays(30), session.AbsoluteExpiresAt);

        // Two hours without a request: past the store's 30-minute default, well inside the cookie's lifetime.
        Cluster.Time.Advance(TimeSpan.FromHours(2));
        Assert.NotNull(await tickets.RetrieveAsync(key, Ct));
    }

    [Fact]
    public async Task A_sliding_cookie_without_an_absolute_lifetime_of_its_own_gets_the_clusters()
    {
        var user = "sliding-default-" + Guid.NewGuid().ToString("N")[..8];
        using var services = TicketServices(cookie => cookie.ExpireTimeSpan = TimeSpan.FromDays(14));
        var key = await services.GetRequiredService<SessionGrainsTicketStore>().StoreAsync(Signed(Ticket(user), TimeSpan.FromDays(14)), Ct);

        var session = (await Cluster.Store.ValidateAsync(key, cancellationToken: Ct))!;
        Assert.Equal(TimeSpan.FromDays(14), session.IdleTimeout);
        Assert.Equal(session.CreatedAt + new SessionGrainsOptions().DefaultAbsoluteTimeout, session.AbsoluteExpiresAt);
    }

    [Theory]
    [InlineData(false, null)] // the scheme does not slide
    [InlineData(true, false)] // the scheme slides, but this sign-in forbids refreshing (AllowRefresh = false)
    public async Task A_cookie_that_does_not_slide_ends_at_its_expiry_and_not_before(bool schemeSlides, bool? allowRefresh)
    {
        var user = "fixed-" + Guid.NewGuid().ToString("N")[..8];
        using var services = TicketServices(cookie => (cookie.ExpireTimeSpan, cookie.SlidingExpiration) = (TimeSpan.FromHours(2), schemeSlides));
        var tickets = services.GetRequiredService<SessionGrainsTicketStore>();
        var ticket = Signed(Ticket(user), TimeSpan.FromHours(2));
        ticket.Properties.AllowRefresh = allowRefresh;
        var key = await tickets.StoreAsync(ticket, Ct);

        var session = (await Cluster.Store.ValidateAsync(key, cancellationToken: Ct))!;
        // The session ends when the ticket does (its properties keep whole seconds), and not sooner for being unused.
        Assert.Equal(ticket.Properties.ExpiresUtc, session.AbsoluteExpiresAt);
        Assert.Equal(session.AbsoluteExpiresAt - session.CreatedAt, session.IdleTimeout);

        Cluster.Time.Advance(TimeSpan.FromMinutes(110)); // unused for longer than the store's 30-minute idle default
        Assert.NotNull(await tickets.RetrieveAsync(key, Ct));
        Cluster.Time.Advance(TimeSpan.FromMinutes(11));
        Assert.Null(await tickets.RetrieveAsync(key, Ct));
    }

    [Fact]
    public void A_non_positive_absolute_timeout_is_refused_at_start()
    {
        using var services = TicketServices(_ => { }, o => o.AbsoluteTimeout = TimeSpan.Zero);
        // What the host runs as it starts (ValidateOnStart).
        var failure = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());
        Assert.Contains("AbsoluteTimeout", failure.Message, StringComparison.Ordinal);
    }

    /// <summary>The ticket store as an app registers it, over this cluster's store and clock.</summary>
    private ServiceProvider TicketServices(Action<CookieAuthenticationOptions> cookie, Action<SessionGrainsTicketStoreOptions>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddSingleton(Cluster.Store);
        services.AddSingleton<TimeProvider>(Cluster.Time);
        services.AddSingleton(Protection);
        services.AddAuthentication().AddCookie(cookie);
        services.AddSessionGrainsTicketStore(configure ?? (_ => { }));
        var provider = services.BuildServiceProvider();

        // The cookie handler reads its scheme's options before it calls the store.
        Assert.IsType<SessionGrainsTicketStore>(provider.GetRequiredService<IOptionsMonitor<CookieAuthenticationOptions>>().Get(CookieAuthenticationDefaults.AuthenticationScheme).SessionStore);
        return provider;
    }

    /// <summary>A ticket as the cookie handler hands it to the store at sign-in: issued now, expiring after <paramref name="lifetime"/>.</summary>
    private AuthenticationTicket Signed(AuthenticationTicket ticket, TimeSpan lifetime)
    {
        var now = Cluster.Time.GetUtcNow();
        ticket.Properties.IssuedUtc = now;
        ticket.Properties.ExpiresUtc = now + lifetime;
        return ticket;
    }
}
