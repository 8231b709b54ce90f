using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using SessionGrains.Silo;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>The Orleans dashboard on the standalone silo: off by default, behind the API key, loopback-only without one.</summary>
public sealed class DashboardTests
{
    private const string AdminKey = "dashboard-admin-key-0123456789";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_dashboard_is_off_by_default()
    {
        await using var silo = SiloApiFactory.Create();
        using var http = silo.CreateClient();

        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(SiloDashboard.Path + "/", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health", Ct)).StatusCode);
    }

    [Fact]
    public async Task With_an_api_key_the_dashboard_needs_the_admin_key_and_a_frontend_key_is_not_enough()
    {
        await using var silo = SiloApiFactory.Create(null, ("SessionStore:Dashboard", "true"), ("SessionStore:ApiKey", AdminKey), ("SessionStore:FrontendApiKey", "dashboard-frontend-key-01234567"));
        using var http = silo.CreateClient();

        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync(SiloDashboard.Path + "/", Ct)).StatusCode);
        using var frontend = new HttpRequestMessage(HttpMethod.Get, SiloDashboard.Path + "/");
        frontend.Headers.Add(ApiKeyMiddleware.Header, "dashboard-frontend-key-01234567");
        Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(frontend, Ct)).StatusCode);
        using var admin = new HttpRequestMessage(HttpMethod.Get, SiloDashboard.Path + "/");
        admin.Headers.Add(ApiKeyMiddleware.Header, AdminKey);
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(admin, Ct)).StatusCode);
    }

    [Fact]
    public async Task Without_an_api_key_the_dashboard_is_served_to_loopback_callers_only()
    {
        await using var silo = SiloApiFactory.Create(null, ("SessionStore:Dashboard", "true"));
        using var http = silo.CreateClient();

        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(SiloDashboard.Path + "/", Ct)).StatusCode);
        Assert.True(SiloDashboard.IsLoopback(IPAddress.Loopback));
        Assert.True(SiloDashboard.IsLoopback(IPAddress.IPv6Loopback));
        Assert.False(SiloDashboard.IsLoopback(IPAddress.Parse("10.0.0.5")));
        Assert.False(SiloDashboard.IsLoopback(IPAddress.Parse("192.168.1.20").MapToIPv6()));
    }

    [Fact]
    public async Task In_a_browser_sending_the_admin_key_the_dashboard_lists_the_users_session_grains()
    {
        await using var silo = SiloApiFactory.Create(null, ("SessionStore:Dashboard", "true"), ("SessionStore:ApiKey", AdminKey));
        silo.UseKestrel(0);
        silo.StartServer();
        var address = new Uri(silo.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        using (var http = new HttpClient { BaseAddress = address })
        {
            http.DefaultRequestHeaders.Add(ApiKeyMiddleware.Header, AdminKey);
            foreach (var user in new[] { "ada", "bob", "cy" })
            {
                (await http.PostAsJsonAsync("/sessions", new { userId = user }, Ct)).EnsureSuccessStatusCode();
            }
        }

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await WebFrontendTests.LaunchChromiumAsync(playwright);
        // The header a reverse proxy in front of the dashboard would add.
        var context = await browser.NewContextAsync(new()
        {
            BaseURL = address.ToString(),
            ExtraHTTPHeaders = new Dictionary<string, string> { [ApiKeyMiddleware.Header] = AdminKey },
            ViewportSize = new() { Width = 1280, Height = 900 },
        });
        var page = await context.NewPageAsync();
        var failed = new List<string>();
        page.Response += (_, response) =>
        {
            if (response.Status >= 400)
            {
                failed.Add($"{response.Status} {response.Url}");
            }
        };
        await page.GotoAsync(SiloDashboard.Path + "/");

        var sessionGrain = new Regex(@"\bUserSessionsGrain\b"); // one activation per user signed in above
        try
        {
            await page.GetByText("Active silos").WaitForAsync(new() { Timeout = 30_000 });
            await page.ScreenshotAsync(new() { Path = Path.Combine(WebFrontendTests.Screenshots, "dashboard-overview.png"), FullPage = true });
            await page.GetByRole(AriaRole.Link, new() { Name = "Grains", Exact = true }).ClickAsync();
            await page.GetByText(sessionGrain).First.WaitForAsync(new() { Timeout = 30_000 });
        }
        finally
        {
            // Kept whether or not the grains showed, so a failure can be looked at.
            await page.ScreenshotAsync(new() { Path = Path.Combine(WebFrontendTests.Screenshots, "dashboard-grains.png"), FullPage = true });
            TestContext.Current.TestOutputHelper?.WriteLine(string.Join(Environment.NewLine, failed));
        }

        Assert.Matches(sessionGrain, await page.ContentAsync());
        Assert.Empty(failed);
    }
}
