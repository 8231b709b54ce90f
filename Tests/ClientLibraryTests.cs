using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
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
            .AddSessionGrains(o => o.DefaultIdleTimeout = TimeSpan.FromMinutes(5))
            .Configure<Orleans.Configuration.GrainDirectoryOptions>(o => o.RangeLeaseDuration = TimeSpan.FromSeconds(45)));
        builder.Services.AddSessionStore();
        using var host = builder.Build();
        await host.StartAsync(Ct);
        var store = host.Services.GetRequiredService<ISessionStore>();

        // AddSessionGrains alone gives a host app the directory that never runs a session twice after a crash.
        Assert.Equal("DistributedGrainDirectory", SiloHostTests.DefaultGrainDirectory(host.Services).GetType().Name);
        Assert.Equal(TimeSpan.FromSeconds(45), host.Services.GetRequiredService<IOptions<Orleans.Configuration.GrainDirectoryOptions>>().Value.RangeLeaseDuration);

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
    public async Task A_frontend_with_a_bad_redis_string_fails_at_start_naming_the_setting_without_its_password()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddSessionGrainsClient(o => o.Redis = ",,,password=hunter2-secret", store => store.TokenKeys = SiloApiFactory.TestTokenKeys);
        using var host = builder.Build();

        var failure = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));

        Assert.Contains("SessionStore:Redis", failure.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2-secret", failure.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("SessionStore:ClusterId", " ")]
    [InlineData("SessionStore:GatewayPort", "70000")]
    [InlineData("SessionStore:ResponseTimeout", "00:00:00")]
    [InlineData("SessionStore:TokenKeys", "k1:c2VjcmV0LXRvby1zaG9ydA==")]
    public async Task A_frontend_configured_from_its_section_fails_at_start_naming_a_bad_setting(string setting, string value)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { [setting] = value });
        builder.Services.AddSessionGrainsClient(builder.Configuration.GetSection("SessionStore"));
        using var host = builder.Build();

        var failure = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));

        Assert.Contains(setting, failure.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("c2VjcmV0LXRvby1zaG9ydA", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_frontend_with_redis_refuses_to_start_without_token_keys()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddSessionGrainsClient(o => o.Redis = "127.0.0.1:1");
        using var host = builder.Build();

        var failure = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));

        Assert.Contains("SessionStore:TokenKeys is required", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_section_binds_each_setting_to_the_one_class_that_declares_it()
    {
        var settings = new Dictionary<string, string?>
        {
            ["SessionStore:Redis"] = "127.0.0.1:6390",
            ["SessionStore:ClusterId"] = "c1",
            ["SessionStore:ServiceId"] = "s1",
            ["SessionStore:GatewayPort"] = "30123",
            ["SessionStore:ResponseTimeout"] = "00:00:07",
            ["SessionStore:TokenKeys"] = SiloApiFactory.TestTokenKeys,
            ["SessionStore:BatchValidations"] = "false",
        };
        var section = new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection("SessionStore");
        var services = new ServiceCollection().AddLogging();
        services.AddSessionGrainsClient(section);
        services.AddSessionStore(section); // a second registration adds no second validator
        using var provider = services.BuildServiceProvider();

        var cluster = provider.GetRequiredService<IOptions<SessionClusterOptions>>().Value;
        Assert.Equal(("127.0.0.1:6390", "c1", "s1", 30123, TimeSpan.FromSeconds(7)), (cluster.Redis, cluster.ClusterId, cluster.ServiceId, cluster.GatewayPort, cluster.ResponseTimeout));
        var store = provider.GetRequiredService<IOptions<SessionStoreOptions>>().Value;
        Assert.Equal((SiloApiFactory.TestTokenKeys, (bool?)false), (store.TokenKeys, store.BatchValidations));
        var orleans = provider.GetRequiredService<IOptions<Orleans.Configuration.ClusterOptions>>().Value;
        Assert.Equal(("c1", "s1"), (orleans.ClusterId, orleans.ServiceId));
        Assert.Equal(TimeSpan.FromSeconds(7), provider.GetRequiredService<IOptions<Orleans.Configuration.ClientMessagingOptions>>().Value.ResponseTimeout);
        Assert.Single(provider.GetServices<IValidateOptions<SessionClusterOptions>>());
        Assert.Single(provider.GetServices<IValidateOptions<SessionStoreOptions>>());
    }

    private IHost BuildFrontend(SiloApiFactory silo)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.AddTokenLogWatch();
        builder.Services.AddSessionGrainsClient(
            o =>
            {
                o.Redis = redis.ConnectionString;
                o.ClusterId = silo.ClusterId;
                o.ServiceId = silo.ServiceId;
            },
            store => store.TokenKeys = SiloApiFactory.TestTokenKeys);
        return builder.Build();
    }
}
