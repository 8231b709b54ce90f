using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>Cookie-authentication tickets kept in session grains: listed under their user, revocable, renewed by sliding.</summary>
[Collection(RedisClusterCollection.Name)]
public sealed class TicketStoreTests(RedisClusterFixture fixture)
{
    private SessionCluster Cluster => fixture.Cluster;

    private SessionGrainsTicketStore Tickets => new(Cluster.Store, Cluster.Time);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static AuthenticationTicket Ticket(string user, string claimType = ClaimTypes.NameIdentifier) =>
        new(new ClaimsPrincipal(new ClaimsIdentity([new Claim(claimType, user), new Claim(ClaimTypes.Name, "Display " + user)], "Cookies")), "Cookies");

    [Fact]
    public async Task A_stored_ticket_is_a_session_of_its_user_and_comes_back_whole()
    {
        var user = "ticket-" + Guid.NewGuid().ToString("N")[..8];
        var key = await Tickets.StoreAsync(Ticket(user));

        var ticket = await Tickets.RetrieveAsync(key);

        Assert.Equal("Display " + user, ticket!.Principal.Identity!.Name);
        var listed = await Cluster.Store.ListByUserAsync(user, cancellationToken: Ct);
        Assert.Single(listed.Sessions);
        Assert.StartsWith(SessionToken.Prefix, key, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_sub_claim_names_the_user_when_present()
    {
        var user = "sub-" + Guid.NewGuid().ToString("N")[..8];
        await Tickets.StoreAsync(Ticket(user, "sub"));
        Assert.Equal(1, await Cluster.Store.CountForUserAsync(user, Ct));
    }

    [Fact]
    public async Task Revoking_the_session_elsewhere_makes_the_ticket_disappear()
    {
        var user = "revoked-" + Guid.NewGuid().ToString("N")[..8];
        var one = await Tickets.StoreAsync(Ticket(user));
        var other = await Tickets.StoreAsync(Ticket(user));
        var oneId = (await Cluster.Store.ValidateAsync(one, cancellationToken: Ct))!.SessionId;

        Assert.True(await Cluster.Store.RevokeAsync(user, oneId, Ct));
        Assert.Null(await Tickets.RetrieveAsync(one));
        Assert.NotNull(await Tickets.RetrieveAsync(other));

        await Cluster.Store.DeleteAllForUserAsync(user, cancellationToken: Ct);
        Assert.Null(await Tickets.RetrieveAsync(other));
    }

    [Fact]
    public async Task Renew_replaces_the_ticket_and_slides_and_remove_signs_out()
    {
        var user = "renew-" + Guid.NewGuid().ToString("N")[..8];
        var key = await Tickets.StoreAsync(Ticket(user));
        Cluster.Time.Advance(TimeSpan.FromMinutes(20));

        await Tickets.RenewAsync(key, Ticket("renamed", ClaimTypes.NameIdentifier));
        Cluster.Time.Advance(TimeSpan.FromMinutes(20)); // 40 min after sign-in, 20 after the renewal: still inside 30 min idle
        Assert.Equal("Display renamed", (await Tickets.RetrieveAsync(key))!.Principal.Identity!.Name);

        await Tickets.RemoveAsync(key);
        Assert.Null(await Tickets.RetrieveAsync(key));
        Assert.Equal(0, await Cluster.Store.CountForUserAsync(user, Ct));
    }

    [Fact]
    public async Task A_principal_without_a_user_id_is_refused()
    {
        var anonymous = new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, "nobody")], "Cookies")), "Cookies");
        await Assert.ThrowsAsync<InvalidOperationException>(() => Tickets.StoreAsync(anonymous));
    }
}
