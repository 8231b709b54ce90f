using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>The two ways an application gets an <see cref="ISessionStore"/>: as a frontend (Orleans client) and embedding a silo.</summary>
public sealed class ClientLibraryTests(RedisServer redis)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_frontend_with_AddSessionGrainsClient_shares_sessions_with_the_silos_http_api()
    {
        await using var silo = SiloApiFactory.Create(redis);
        using var http = silo.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health", Ct)).StatusCode);

        using var frontend = BuildFrontend(silo);
        await frontend.StartAsync(Ct);
        var store = frontend.Services.GetRequiredService<ISessionStore>();

        // Created through the Orleans client, seen through the HTTP API of the silo, and back.
        var created = await store.CreateAsync("frontend-user", cancellationToken: Ct);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/sessions/current");
        request.Headers.Add("X-Session-Token", created.Token.Value);
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(request, Ct)).StatusCode);

        var viaHttp = JsonDocument.Parse(await (await http.PostAsJsonAsync("/sessions", new { userId = "frontend-user" }, Ct)).Content.ReadAsStringAsync(Ct)).RootElement;
        Assert.NotNull(await store.ValidateAsync(viaHttp.GetProperty("token").GetString(), cancellationToken: Ct));
        Assert.Equal(2, await store.CountForUserAsync("frontend-user", Ct));

        await frontend.StopAsync(Ct);
    }

    [Fact]
    public async Task A_frontend_started_before_the_silos_waits_for_them_and_then_serves()
    {
        await using var silo = SiloApiFactory.Create(redis);
        using var frontend = BuildFrontend(silo);

        // Orleans' client keeps retrying its first connection, so frontends and silos can start in any order.
        var starting = frontend.StartAsync(Ct);
        await Task.Delay(TimeSpan.FromSeconds(2), Ct);
        Assert.False(starting.IsCompleted, "the frontend's start-up should wait for the cluster, not finish or fail");

        using var http = silo.CreateClient(); // the silo starts now
        await starting.WaitAsync(TimeSpan.FromSeconds(60), Ct);
        var store = frontend.Services.GetRequiredService<ISessionStore>();
        var created = await store.CreateAsync("late-cluster-user", cancellationToken: Ct);
        Assert.NotNull(await store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
        await frontend.StopAsync(Ct);
    }

    [Fact]
    public async Task A_host_app_embeds_a_silo_in_one_call_and_uses_the_same_store()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.AddTokenLogWatch();
        builder.UseOrleans(silo => silo
            .UseLocalhostClustering(RedisServer.FreePort(), RedisServer.FreePort(), serviceId: "embedded-" + Guid.NewGuid().ToString("N")[..6])
            .AddSessionGrains(o => o.DefaultIdleTimeout = TimeSpan.FromMinutes(5)));
        builder.Services.AddSessionStore();
        using var host = builder.Build();
        await host.StartAsync(Ct);
        var store = host.Services.GetRequiredService<ISessionStore>();

        var created = await store.CreateAsync("host-user", cancellationToken: Ct);

        Assert.Equal(TimeSpan.FromMinutes(5), created.Session.IdleTimeout);
        Assert.NotNull(await store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
        Assert.True(await store.DeleteAsync(created.Token.Value, Ct));
        await host.StopAsync(Ct);
    }

    [Fact]
    public void The_asp_net_core_one_liners_wire_the_cache_and_the_cookie_ticket_store()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSessionGrainsClient(o => o.GatewayPort = RedisServer.FreePort());
        services.AddSessionGrainsDistributedCache();
        services.AddAuthentication().AddCookie();
        services.AddSessionGrainsTicketStore();
        using var provider = services.BuildServiceProvider();

        Assert.IsType<SessionGrainsDistributedCache>(provider.GetRequiredService<Microsoft.Extensions.Caching.Distributed.IDistributedCache>());
        var cookie = provider.GetRequiredService<Microsoft.Extensions.Options.IOptionsMonitor<Microsoft.AspNetCore.Authentication.Cookies.CookieAuthenticationOptions>>()
            .Get(Microsoft.AspNetCore.Authentication.Cookies.CookieAuthenticationDefaults.AuthenticationScheme);
        Assert.IsType<SessionGrainsTicketStore>(cookie.SessionStore);
    }

    [Fact]
    public void A_frontend_with_a_bad_redis_string_fails_naming_the_setting()
    {
        var services = new ServiceCollection();
        var failure = Assert.ThrowsAny<Exception>(() => services.AddSessionGrainsClient(o => o.Redis = ",,,password=x"));
        Assert.Contains("SessionStore:Redis", failure.Message, StringComparison.Ordinal);
    }

    private IHost BuildFrontend(SiloApiFactory silo)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.AddTokenLogWatch();
        builder.Services.AddSessionGrainsClient(o =>
        {
            o.Redis = redis.ConnectionString;
            o.ClusterId = silo.ClusterId;
            o.ServiceId = silo.ServiceId;
            o.TokenKeys = SiloApiFactory.TestTokenKeys;
        });
        return builder.Build();
    }
}
