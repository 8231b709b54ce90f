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

    private const string FrontendCookieName = "sessiongrains"; // served over plain http://127.0.0.1 here

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Where the browser tests leave their screenshots (README, "Contributing").</summary>
    internal static string Screenshots { get; } = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "TestResults", "screenshots")).FullName;

    /// <summary>Debian's headless Chromium, with the flags that keep it off the network (a test tool's own browser download fails here).</summary>
    internal static Task<IBrowser> LaunchChromiumAsync(IPlaywright playwright)
    {
        Assert.True(File.Exists(Chromium), "Chromium is needed: install the Debian package 'chromium' (./test.sh does).");
        return playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
    }

    [Fact]
    public async Task In_a_browser_one_device_signs_the_other_out_and_its_next_page_is_the_sign_in_page()
    {
        await using var frontend = FrontendFactory.Embedded();
        frontend.UseKestrel(0);
        frontend.StartServer();
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await LaunchChromiumAsync(playwright);
        var laptop = await browser.NewContextAsync(new() { BaseURL = frontend.Address.ToString(), UserAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0", ViewportSize = new() { Width = 1100, Height = 700 } });
        var phone = await browser.NewContextAsync(new() { BaseURL = frontend.Address.ToString(), UserAgent = "Mozilla/5.0 (Linux; Android 15) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Mobile Safari/537.36" });
        var laptopPage = await SignInAsync(laptop, "carol");
        var phonePage = await SignInAsync(phone, "carol");

        await laptopPage.GotoAsync("/Devices");
        var rows = laptopPage.Locator("table.devices tbody tr");
        Assert.Equal(2, await rows.CountAsync());
        Assert.Contains("this device", await laptopPage.Locator("tr.this").InnerTextAsync(), StringComparison.Ordinal);
        Assert.Contains("Chrome on Android", await laptopPage.Locator("tbody tr:not(.this)").InnerTextAsync(), StringComparison.Ordinal);

        // Times read as people read them, the exact one in the browser's own zone on hover; nothing wraps.
        var lastActive = laptopPage.Locator("tr.this td:nth-child(4) time");
        Assert.Equal("just now", await lastActive.InnerTextAsync());
        var exact = await lastActive.GetAttributeAsync("title");
        Assert.True(exact is not null && !exact.EndsWith('Z') && exact.Contains(DateTime.UtcNow.Year.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal), $"the exact time on hover was '{exact}'");
        Assert.True(DateTimeOffset.TryParse(await lastActive.GetAttributeAsync("datetime"), System.Globalization.CultureInfo.InvariantCulture, out _));
        var oneLine = (await laptopPage.Locator("form[action*=SignOutOthers] button").BoundingBoxAsync())!.Height;
        Assert.Equal(oneLine, (await laptopPage.Locator("tbody tr:not(.this) button").BoundingBoxAsync())!.Height, 0.5);
        Assert.Equal((await laptopPage.Locator("th").First.BoundingBoxAsync())!.Height, (await laptopPage.Locator("th:nth-child(2)").BoundingBoxAsync())!.Height, 0.5);
        await laptopPage.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "devices-two.png"), FullPage = true });

        // The sign-out posts and comes back to this page: wait for the list it shows then, not for a URL it already had.
        await laptopPage.Locator("tbody tr:not(.this) button").ClickAsync();
        await Assertions.Expect(rows).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        await laptopPage.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "devices-after-sign-out.png"), FullPage = true });

        await phonePage.GotoAsync("/");
        Assert.Contains("/SignIn", phonePage.Url, StringComparison.Ordinal);
        await laptopPage.GotoAsync("/");
        Assert.Contains("Hello, carol", await laptopPage.ContentAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task In_a_browser_the_devices_page_follows_sign_ins_and_sign_outs_live_and_goes_to_sign_in_when_its_own_session_ends()
    {
        await using var frontend = FrontendFactory.Embedded();
        frontend.UseKestrel(0);
        frontend.StartServer();
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await LaunchChromiumAsync(playwright);
        var laptop = await browser.NewContextAsync(new() { BaseURL = frontend.Address.ToString(), UserAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0", ViewportSize = new() { Width = 1100, Height = 700 } });
        var phone = await browser.NewContextAsync(new() { BaseURL = frontend.Address.ToString(), UserAgent = "Mozilla/5.0 (Linux; Android 15) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Mobile Safari/537.36" });
        var tablet = await browser.NewContextAsync(new() { BaseURL = frontend.Address.ToString(), ViewportSize = new() { Width = 1100, Height = 700 } });

        var page = await SignInAsync(laptop, "alice");
        await page.GotoAsync("/Devices");
        var navigations = new List<string>();
        page.FrameNavigated += (_, frame) =>
        {
            if (frame == page.MainFrame)
            {
                navigations.Add(frame.Url);
            }
        };

        // A marker that only survives if the page is never loaded again; the stream is open once the page says so.
        await page.EvaluateAsync("() => { window.loadedOnce = 'yes'; }");
        await Assertions.Expect(page.Locator("table.devices tbody[data-live=open]")).ToHaveCountAsync(1, new() { Timeout = 15_000 });
        var rows = page.Locator("table.devices tbody tr");
        Assert.Equal(1, await rows.CountAsync());
        Assert.True(await page.Locator("form[action*=SignOutOthers]").IsHiddenAsync());

        // Another browser signs in as alice: its row appears, rendered as the server renders rows, without a reload.
        var phonePage = await SignInAsync(phone, "alice");
        await Assertions.Expect(rows).ToHaveCountAsync(2, new() { Timeout = 10_000 });
        var added = page.Locator("tbody tr:not(.this)");
        Assert.Contains("Chrome on Android", await added.InnerTextAsync(), StringComparison.Ordinal);
        Assert.Equal("just now", await added.Locator("td:nth-child(3) time").InnerTextAsync());
        var exact = await added.Locator("td:nth-child(3) time").GetAttributeAsync("title");
        Assert.True(exact is not null && !exact.EndsWith('Z') && exact.Contains(DateTime.UtcNow.Year.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal), $"the exact time on hover was '{exact}'");
        Assert.True(await page.Locator("form[action*=SignOutOthers]").IsVisibleAsync());
        Assert.Equal("yes", await page.EvaluateAsync<string>("() => window.loadedOnce"));
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "devices-live-signed-in.png"), FullPage = true });

        // That browser signs out: its row goes.
        await phonePage.Locator("header form button").ClickAsync();
        await phonePage.WaitForURLAsync(new Regex("/SignIn"));
        await Assertions.Expect(rows).ToHaveCountAsync(1, new() { Timeout = 10_000 });
        Assert.Equal(1, await page.Locator("tr.this").CountAsync());
        Assert.True(await page.Locator("form[action*=SignOutOthers]").IsHiddenAsync());
        Assert.Equal("yes", await page.EvaluateAsync<string>("() => window.loadedOnce"));
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "devices-live-signed-out-other.png"), FullPage = true });
        Assert.Empty(navigations);

        // A third browser signs in and signs out everywhere else: this page's own session ends, and it goes to sign in.
        var tabletPage = await SignInAsync(tablet, "alice");
        await Assertions.Expect(rows).ToHaveCountAsync(2, new() { Timeout = 10_000 });
        await tabletPage.GotoAsync("/Devices");
        await tabletPage.Locator("form[action*=SignOutOthers] button").ClickAsync();
        await page.WaitForURLAsync(new Regex("/SignIn"), new() { Timeout = 15_000 });
        Assert.Equal([page.Url], navigations); // one navigation, the script's, and no reload before it
        Assert.Contains("Sign in", await page.Locator("h1").InnerTextAsync(), StringComparison.Ordinal);
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "devices-live-own-session-ended.png"), FullPage = true });
        await tabletPage.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "devices-live-signed-out-everywhere-else.png"), FullPage = true });

        var store = frontend.Services.GetRequiredService<ISessionStore>();
        Assert.Equal(1, await store.CountForUserAsync("alice", Ct));
        await page.GotoAsync("/");
        Assert.Contains("/SignIn", page.Url, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_device_event_stream_is_only_for_a_signed_in_user_and_refuses_a_bad_position()
    {
        await using var frontend = FrontendFactory.Embedded();
        using var http = frontend.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false });
        using (var anonymous = await http.GetAsync("/devices/events", HttpCompletionOption.ResponseHeadersRead, Ct))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }

        var cookies = await SignInOverHttpAsync(http, "ivan");
        using var request = new HttpRequestMessage(HttpMethod.Get, "/devices/events?after=nonsense");
        request.Headers.Add("Cookie", cookies);
        using var bad = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }

    [Theory]
    [InlineData(10, "just now")]
    [InlineData(50, "1 minute ago")]
    [InlineData(150, "3 minutes ago")]
    [InlineData(3599, "1 hour ago")]
    [InlineData(7 * 3600, "7 hours ago")]
    [InlineData(30 * 3600, "1 day ago")]
    [InlineData(-29 * 60, "in 29 minutes")]
    [InlineData(-12 * 3600, "in 12 hours")]
    public void A_moment_reads_as_the_largest_whole_unit_before_or_after_now(int secondsAgo, string expected)
    {
        var now = new DateTimeOffset(2026, 12, 2, 12, 0, 0, TimeSpan.Zero);
        Assert.Equal(expected, SessionGrains.WebFrontend.FrontendPageModel.Relative(now.AddSeconds(-secondsAgo), now));
    }

    [Fact]
    public async Task In_a_browser_a_planted_session_cookie_is_replaced_at_sign_in_and_the_victim_sees_only_their_own_device()
    {
        await using var frontend = FrontendFactory.Embedded();
        frontend.UseKestrel(0);
        frontend.StartServer();
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await LaunchChromiumAsync(playwright);
        var attacker = await browser.NewContextAsync(new() { BaseURL = frontend.Address.ToString() });
        var victim = await browser.NewContextAsync(new() { BaseURL = frontend.Address.ToString(), ViewportSize = new() { Width = 1100, Height = 700 } });
        var attackerPage = await SignInAsync(attacker, "mallory");
        var planted = (await attacker.CookiesAsync()).Single(c => c.Name == FrontendCookieName);
        await victim.AddCookiesAsync([new Microsoft.Playwright.Cookie { Name = planted.Name, Value = planted.Value, Domain = planted.Domain, Path = planted.Path }]);

        var page = await victim.NewPageAsync();
        await page.GotoAsync("/SignIn");
        await page.FillAsync("#user", "victor");
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(new Regex("/$"));
        Assert.Contains("Hello, victor", await page.ContentAsync(), StringComparison.Ordinal);

        await page.GotoAsync("/Devices");
        Assert.Equal(1, await page.Locator("table.devices tbody tr").CountAsync());
        Assert.Equal(1, await page.Locator("tr.this").CountAsync());
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "devices-after-sign-in-over-planted-cookie.png"), FullPage = true });

        // The attacker's browser, still holding the planted cookie, is signed in as nobody.
        await attackerPage.GotoAsync("/");
        Assert.Contains("/SignIn", attackerPage.Url, StringComparison.Ordinal);
        var store = frontend.Services.GetRequiredService<ISessionStore>();
        Assert.Equal(0, await store.CountForUserAsync("mallory", Ct));
        Assert.Equal(1, await store.CountForUserAsync("victor", Ct));
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

    [Fact]
    public async Task Signing_in_over_a_planted_cookie_gives_a_new_session_in_the_users_index_and_the_planted_token_dies()
    {
        await using var frontend = FrontendFactory.Embedded();
        using var http = frontend.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false });
        var store = frontend.Services.GetRequiredService<ISessionStore>();
        var attacker = "mallory-" + Guid.NewGuid().ToString("N")[..6];
        var victim = "victim-" + Guid.NewGuid().ToString("N")[..6];
        var planted = AuthCookie(await SignInOverHttpAsync(http, attacker));
        var attackerSession = Assert.Single((await store.ListByUserAsync(attacker, cancellationToken: Ct)).Sessions).SessionId;

        // The victim's browser carries the attacker's cookie when the victim signs in.
        var victimCookies = await SignInOverHttpAsync(http, victim, planted);

        Assert.Equal(HttpStatusCode.Redirect, await StatusAsync(http, "/", planted)); // the planted token authenticates as nobody
        Assert.Equal(0, await store.CountForUserAsync(attacker, Ct));
        var devices = await GetAsync(http, "/Devices", victimCookies);
        var victimSession = Assert.Single((await store.ListByUserAsync(victim, cancellationToken: Ct)).Sessions).SessionId;
        Assert.Single(DeviceRow().Matches(devices)); // one device, this browser's, and it is the session in the victim's index
        Assert.Contains($"<tr class=\"this\" data-session=\"{SessionIds.ForLog(victimSession)}\"", devices, StringComparison.Ordinal);
        Assert.DoesNotContain(SessionIds.ForLog(attackerSession), devices, StringComparison.Ordinal);

        // The victim's "sign out everywhere" reaches the session their browser holds.
        Assert.Equal(1, await store.DeleteAllForUserAsync(victim, cancellationToken: Ct));
        Assert.Equal(HttpStatusCode.Redirect, await StatusAsync(http, "/", victimCookies));
    }

    [Fact]
    public async Task Signing_in_again_as_the_same_user_issues_a_new_token_and_ends_the_old_one()
    {
        await using var frontend = FrontendFactory.Embedded();
        using var http = frontend.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false });
        var store = frontend.Services.GetRequiredService<ISessionStore>();
        var first = AuthCookie(await SignInOverHttpAsync(http, "frank"));

        var second = await SignInOverHttpAsync(http, "frank", first);

        Assert.Equal(HttpStatusCode.Redirect, await StatusAsync(http, "/", first));
        Assert.Contains("Hello, frank", await GetAsync(http, "/", second), StringComparison.Ordinal);
        Assert.Equal(1, await store.CountForUserAsync("frank", Ct));
    }

    [Fact]
    public async Task Over_https_the_cookies_are_host_prefixed_and_secure_and_signing_in_or_out_ends_the_session_state()
    {
        await using var frontend = FrontendFactory.Embedded();
        using var https = frontend.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { BaseAddress = new Uri("https://localhost"), AllowAutoRedirect = false, HandleCookies = false });
        var (cookies, setCookies) = await PostSignInAsync(https, "grace", null);
        AssertHostCookie(Assert.Single(setCookies, c => c.StartsWith("__Host-sessiongrains=", StringComparison.Ordinal)));

        using (var first = await SendAsync(https, "/", cookies))
        {
            AssertHostCookie(Assert.Single(SetCookies(first), c => c.StartsWith("__Host-sessiongrains-state=", StringComparison.Ordinal)));
            cookies = Merge(cookies, Cookies(first));
        }

        Assert.Contains("id=\"visits\">2<", await GetAsync(https, "/", cookies), StringComparison.Ordinal);
        var oldState = cookies.Split("; ").Single(c => c.StartsWith("__Host-sessiongrains-state=", StringComparison.Ordinal));

        // Signing in again in this browser drops its state cookie, and the state kept under it is gone.
        (cookies, setCookies) = await PostSignInAsync(https, "grace", cookies);
        Assert.Contains(setCookies, c => c.StartsWith("__Host-sessiongrains-state=;", StringComparison.Ordinal) && c.Contains("expires=Thu, 01 Jan 1970", StringComparison.OrdinalIgnoreCase));
        Assert.Contains("id=\"visits\">1<", await GetAsync(https, "/", Merge(cookies, oldState)), StringComparison.Ordinal);

        // Signing out drops it too.
        var home = await GetAsync(https, "/", Merge(cookies, oldState));
        using var signOut = new HttpRequestMessage(HttpMethod.Post, "/SignOut")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = AntiforgeryToken().Match(home).Groups[1].Value }),
        };
        signOut.Headers.Add("Cookie", Merge(cookies, oldState));
        using var signedOut = await https.SendAsync(signOut, Ct);
        Assert.Equal(HttpStatusCode.Redirect, signedOut.StatusCode);
        Assert.Contains(SetCookies(signedOut), c => c.StartsWith("__Host-sessiongrains-state=;", StringComparison.Ordinal));
        Assert.Contains(SetCookies(signedOut), c => c.StartsWith("__Host-sessiongrains=;", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Over_plain_http_the_cookies_keep_their_bare_names()
    {
        await using var frontend = FrontendFactory.Embedded();
        using var http = frontend.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false });
        var (cookies, setCookies) = await PostSignInAsync(http, "heidi", null);
        using var home = await SendAsync(http, "/", cookies);

        Assert.Contains(setCookies, c => c.StartsWith("sessiongrains=", StringComparison.Ordinal));
        Assert.Contains(SetCookies(home), c => c.StartsWith("sessiongrains-state=", StringComparison.Ordinal));
        Assert.DoesNotContain(setCookies.Concat(SetCookies(home)), c => c.StartsWith("__Host-", StringComparison.Ordinal));
    }

    /// <summary>What the browser demands of a "__Host-" cookie: Secure, Path=/, no Domain.</summary>
    private static void AssertHostCookie(string setCookie)
    {
        var attributes = setCookie.Split(';').Skip(1).Select(a => a.Trim().ToLowerInvariant()).ToList();
        Assert.Contains("secure", attributes);
        Assert.Contains("path=/", attributes);
        Assert.DoesNotContain(attributes, a => a.StartsWith("domain=", StringComparison.Ordinal));
    }

    /// <summary>Signs in through the form (anti-forgery included) and returns the cookies a browser would then send.</summary>
    private static async Task<string> SignInOverHttpAsync(HttpClient http, string user, string? cookies = null) =>
        (await PostSignInAsync(http, user, cookies)).Cookies;

    /// <summary>Signs in through the form with <paramref name="cookies"/> already in the browser; the cookies after, and the Set-Cookie headers of the sign-in.</summary>
    private static async Task<(string Cookies, string[] SetCookies)> PostSignInAsync(HttpClient http, string user, string? cookies)
    {
        using var formRequest = new HttpRequestMessage(HttpMethod.Get, "/SignIn");
        if (cookies is not null)
        {
            formRequest.Headers.Add("Cookie", cookies);
        }

        using var form = await http.SendAsync(formRequest, Ct);
        var antiforgery = Merge(cookies ?? "", Cookies(form));
        var token = AntiforgeryToken().Match(await form.Content.ReadAsStringAsync(Ct)).Groups[1].Value;
        using var signIn = new HttpRequestMessage(HttpMethod.Post, "/SignIn")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["user"] = user, ["__RequestVerificationToken"] = token }),
        };
        signIn.Headers.Add("Cookie", antiforgery);
        using var signedIn = await http.SendAsync(signIn, Ct);
        Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
        return (Merge(antiforgery, Cookies(signedIn)), SetCookies(signedIn));
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
        using var response = await SendAsync(client, path, cookie);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync(Ct);
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, string path, string cookie)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("Cookie", cookie);
        return await client.SendAsync(request, Ct);
    }

    private static async Task<HttpStatusCode> StatusAsync(HttpClient client, string path, string cookie)
    {
        using var response = await SendAsync(client, path, cookie);
        return response.StatusCode;
    }

    /// <summary>A cookie header after a response: a cookie set again replaces the one sent (as a browser does).</summary>
    private static string Merge(string sent, string set)
    {
        var cookies = new List<string>(sent.Split("; ", StringSplitOptions.RemoveEmptyEntries));
        foreach (var cookie in set.Split("; ", StringSplitOptions.RemoveEmptyEntries))
        {
            cookies.RemoveAll(c => c.Split('=')[0] == cookie.Split('=')[0]);
            cookies.Add(cookie);
        }

        return string.Join("; ", cookies);
    }

    /// <summary>Only the authentication cookie of a cookie header, as an attacker would plant it.</summary>
    private static string AuthCookie(string cookies) =>
        cookies.Split("; ").Single(c => c.StartsWith("sessiongrains=", StringComparison.Ordinal) || c.StartsWith("__Host-sessiongrains=", StringComparison.Ordinal));

    private static string Cookies(HttpResponseMessage response) => string.Join("; ", SetCookies(response).Select(v => v.Split(';')[0]));

    private static string[] SetCookies(HttpResponseMessage response) => response.Headers.TryGetValues("Set-Cookie", out var values) ? [.. values] : [];

    [GeneratedRegex("<tr class=\"[a-z]*\" data-session=")]
    private static partial Regex DeviceRow();

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryToken();
}
