using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using SessionGrains.Silo;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary><c>GET /cluster/silos</c>: who may list the silos, and which membership rows the answer keeps.</summary>
public sealed class ClusterSilosTests
{
    private const string AdminKey = "silos-admin-key-0123456789abcdef";
    private const string FrontendKey = "silos-frontend-key-0123456789abcdef";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void The_answer_keeps_live_silos_and_the_recently_dead_marks_this_one_and_lists_the_dead_last()
    {
        var now = new DateTimeOffset(2026, 12, 2, 12, 0, 0, TimeSpan.Zero);
        var local = Address(11111, 3);
        MembershipEntry[] entries =
        [
            Entry(Address(11112, 1), SiloStatus.Dead, started: now.AddDays(-2), alive: now.AddDays(-1)), // dead for a day: left out
            Entry(Address(11113, 2), SiloStatus.Dead, started: now.AddHours(-3), alive: now.AddHours(-2), declaredDead: now.AddMinutes(-10)),
            Entry(local, SiloStatus.Active, started: now.AddHours(-1), alive: now.AddSeconds(-20)),
            Entry(Address(11114, 4), SiloStatus.Joining, started: now.AddMinutes(-1), alive: DateTimeOffset.MinValue),
            Entry(Address(11115, 5), SiloStatus.ShuttingDown, started: now.AddHours(-5), alive: now.AddSeconds(-30)),
        ];

        var silos = ClusterSilosResponse.From(entries, local, now).Silos;

        Assert.Equal(["shuttingDown", "active", "joining", "dead"], silos.Select(s => s.Status));
        Assert.Equal(["127.0.0.1:11115", "127.0.0.1:11111", "127.0.0.1:11114", "127.0.0.1:11113"], silos.Select(s => s.Address));
        Assert.Equal([false, true, false, false], silos.Select(s => s.IsThisSilo));
        var self = silos[1];
        Assert.Equal((3, "silo-11111", "host-11111", 30001), (self.Generation, self.Name, self.Host, self.GatewayPort));
        Assert.Equal(now.AddHours(-1), self.StartedAt);
        Assert.Equal(TimeSpan.Zero, self.StartedAt.Offset);
    }

    [Fact]
    public async Task Only_the_admin_key_lists_the_silos_a_frontend_key_gets_403_and_no_key_401()
    {
        await using var factory = SiloApiFactory.Create(null, ("SessionStore:ApiKey", AdminKey), ("SessionStore:FrontendApiKey", FrontendKey));
        using var http = factory.CreateClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await SilosAsync(http, key: null)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await SilosAsync(http, FrontendKey)).StatusCode);

        using var admin = await SilosAsync(http, AdminKey);
        Assert.Equal(HttpStatusCode.OK, admin.StatusCode);
        Assert.Equal("no-store", admin.Headers.CacheControl?.ToString());
        var silo = Assert.Single(JsonDocument.Parse(await admin.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("silos").EnumerateArray());
        Assert.Equal($"127.0.0.1:{factory.SiloPort}", silo.GetProperty("address").GetString());
    }

    [Fact]
    public async Task Without_an_api_key_only_a_caller_on_the_silos_host_lists_the_silos()
    {
        await using var open = SiloApiFactory.Create();
        using var local = open.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await SilosAsync(local, key: null)).StatusCode);

        await using var remote = open.WithWebHostBuilder(b => b.ConfigureServices(s => s.AddSingleton<IStartupFilter>(new CallerAddress(IPAddress.Parse("10.1.2.3")))));
        using var elsewhere = remote.CreateClient();
        using var refused = await SilosAsync(elsewhere, key: null);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("SessionStore:ApiKey", await refused.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await elsewhere.GetAsync("/stats", Ct)).StatusCode); // the rest of the open API stays open
    }

    private static async Task<HttpResponseMessage> SilosAsync(HttpClient http, string? key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/cluster/silos");
        if (key is not null)
        {
            request.Headers.Add(ApiKeyMiddleware.Header, key);
        }

        return await http.SendAsync(request, Ct);
    }

    private static SiloAddress Address(int port, int generation) => SiloAddress.New(new IPEndPoint(IPAddress.Loopback, port), generation);

    private static MembershipEntry Entry(SiloAddress address, SiloStatus status, DateTimeOffset started, DateTimeOffset alive, DateTimeOffset? declaredDead = null) => new()
    {
        SiloAddress = address,
        Status = status,
        SiloName = $"silo-{address.Endpoint.Port}",
        HostName = $"host-{address.Endpoint.Port}",
        ProxyPort = address.Endpoint.Port + 18890,
        StartTime = started.UtcDateTime,
        IAmAliveTime = alive.UtcDateTime,
        SuspectTimes = declaredDead is { } at ? [Tuple.Create(Address(11111, 3), at.UtcDateTime)] : [],
    };

    /// <summary>Makes every request come from <paramref name="address"/>, as a caller on another host would.</summary>
    private sealed class CallerAddress(IPAddress address) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((HttpContext http, RequestDelegate following) =>
            {
                http.Connection.RemoteIpAddress = address;
                return following(http);
            });
            next(app);
        };
    }
}
