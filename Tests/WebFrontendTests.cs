using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>The demo frontend: in a real browser (headless Chromium), and as two instances behind no sticky routing.</summary>
[Collection(FaultCollection.Name)]
public sealed partial class WebFrontendTests(RedisServer redis)
{
    private const string Chromium = "/usr/bin/chromium";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task In_a_browser_one_device_signs_the_other_out_and_its_next_page_is_the_sign_in_page()
    {
        Assert.True(File.Exists(Chromium), "Chromium is needed: install the Debian package 'chromium' (./test.sh does).");
        await using var frontend = FrontendFactory.Embedded();
        frontend.UseKestrel(0);
        frontend.StartServer();
        var screenshots = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "TestResults", "screenshots")).FullName;

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var laptop = await browser.NewContextAsync(new() { BaseURL = frontend.Address.ToString(), UserAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0", ViewportSize = new() { Width = 1100, Height = 700 } });
        var phone = await browser.NewContextAsync(new() { BaseURL = frontend.Address.ToString(), UserAgent = "Mozilla/5.0 (Linux; Android 15) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Mobile Safari/537.36" });
        var laptopPage = await SignInAsync(laptop, "carol");
        var phonePage = await SignInAsync(phone, "carol");

        await laptopPage.GotoAsync("/Devices");
        var rows = laptopPage.Locator("table.devices tbody tr");
        Assert.Equal(2, await rows.CountAsync());
        Assert.Contains("this device", await laptopPage.Locator("tr.this").InnerTextAsync(), StringComparison.Ordinal);
        Assert.Contains("Chrome on Android", await laptopPage.Locator("tbody tr:not(.this)").InnerTextAsync(), StringComparison.Ordinal);
        await laptopPage.ScreenshotAsync(new() { Path = Path.Combine(screenshots, "devices-two.png"), FullPage = true });

        await laptopPage.Locator("tbody tr:not(.this) button").ClickAsync();
        await laptopPage.WaitForURLAsync(new Regex("/Devices"));
        Assert.Equal(1, await rows.CountAsync());
        await laptopPage.ScreenshotAsync(new() { Path = Path.Combine(screenshots, "devices-after-sign-out.png"), FullPage = true });

        await phonePage.GotoAsync("/");
        Assert.Contains("/SignIn", phonePage.Url, StringComparison.Ordinal);
        await laptopPage.GotoAsync("/");
        Assert.Contains("Hello, carol", await laptopPage.ContentAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_frontend_instances_serve_the_same_cookie_and_a_revocation_through_one_ends_it_on_the_other()
    {
        await using var silo = SiloApiFactory.Create(redis);
        using (var siloClient = silo.CreateClient())
        {
            Assert.Equal(HttpStatusCode.OK, (await siloClient.GetAsync("/health", Ct)).StatusCode);
        }

        await using var a = FrontendFactory.ClientOf(redis, silo);
        await using var b = FrontendFactory.ClientOf(redis, silo);
        var options = new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false };
        using var onA = a.CreateClient(options);
        using var onB = b.CreateClient(options);

        // Sign in on A: the form and its anti-forgery cookie come from A.
        var authCookie = await SignInOverHttpAsync(onA, "dave");

        // Served by B with the same cookie: B reads A's cookie (shared data-protection keys) and finds the session.
        Assert.Contains("Hello, dave", await GetAsync(onB, "/", authCookie), StringComparison.Ordinal);
        Assert.Contains("Hello, dave", await GetAsync(onA, "/", authCookie), StringComparison.Ordinal);

        // Sign out everywhere through B's store; A's next request goes to the sign-in page.
        await b.Services.GetRequiredService<ISessionStore>().DeleteAllForUserAsync("dave", cancellationToken: Ct);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        request.Headers.Add("Cookie", authCookie);
        using var afterRevoke = await onA.SendAsync(request, Ct);
        Assert.Equal(HttpStatusCode.Redirect, afterRevoke.StatusCode);
        Assert.Contains("/SignIn", afterRevoke.Headers.Location!.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Signing_out_removes_the_session_from_the_users_index()
    {
        await using var frontend = FrontendFactory.Embedded();
        using var http = frontend.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false });
        var store = frontend.Services.GetRequiredService<ISessionStore>();
        var authCookie = await SignInOverHttpAsync(http, "erin");
        Assert.Equal(1, await store.CountForUserAsync("erin", Ct));

        // The sign-out form of the page header, with its anti-forgery token.
        var home = await GetAsync(http, "/", authCookie);
        using var signOut = new HttpRequestMessage(HttpMethod.Post, "/SignOut")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = AntiforgeryToken().Match(home).Groups[1].Value }),
        };
        signOut.Headers.Add("Cookie", authCookie);
        using var signedOut = await http.SendAsync(signOut, Ct);

        Assert.Equal(HttpStatusCode.Redirect, signedOut.StatusCode);
        Assert.Equal(0, await store.CountForUserAsync("erin", Ct));
    }

    /// <summary>Signs in through the form (anti-forgery included) and returns the cookies a browser would then send.</summary>
    private static async Task<string> SignInOverHttpAsync(HttpClient http, string user)
    {
        using var form = await http.GetAsync("/SignIn", Ct);
        var antiforgery = Cookies(form);
        var token = AntiforgeryToken().Match(await form.Content.ReadAsStringAsync(Ct)).Groups[1].Value;
        using var signIn = new HttpRequestMessage(HttpMethod.Post, "/SignIn")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["user"] = user, ["__RequestVerificationToken"] = token }),
        };
        signIn.Headers.Add("Cookie", antiforgery);
        using var signedIn = await http.SendAsync(signIn, Ct);
        Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
        return antiforgery + "; " + Cookies(signedIn);
    }

    private static async Task<IPage> SignInAsync(IBrowserContext context, string user)
    {
        var page = await context.NewPageAsync();
        await page.GotoAsync("/");
        Assert.Contains("/SignIn", page.Url, StringComparison.Ordinal);
        await page.FillAsync("#user", user);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(new Regex("/$"));
        Assert.Contains($"Hello, {user}", await page.ContentAsync(), StringComparison.Ordinal);
        return page;
    }

    private static async Task<string> GetAsync(HttpClient client, string path, string cookie)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("Cookie", cookie);
        using var response = await client.SendAsync(request, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync(Ct);
    }

    private static string Cookies(HttpResponseMessage response) =>
        string.Join("; ", response.Headers.TryGetValues("Set-Cookie", out var values) ? values.Select(v => v.Split(';')[0]) : []);

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryToken();
}
