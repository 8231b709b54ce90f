using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using SessionGrains.Silo;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>
/// The HTTP API key: required with durable storage unless the API is declared open, frontend keys reach only the
/// token routes, several keys at once for rotation, and refused attempts logged (never the key) and limited per address.
/// </summary>
public sealed class ApiKeyTests
{
    private const string AdminKey = "admin-key-0123456789abcdef";
    private const string NextAdminKey = "admin-key-next-0123456789";
    private const string FrontendKey = "frontend-key-0123456789ab";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void With_redis_and_no_key_start_up_fails_naming_the_key_and_the_open_api_settings()
    {
        var failures = Validate(new SiloHostOptions(), redis: "127.0.0.1:6379");

        Assert.Contains("SessionStore:ApiKey is required", failures, StringComparison.Ordinal);
        Assert.Contains("SessionStore:AllowOpenApi=true", failures, StringComparison.Ordinal);
        Assert.Equal("", Validate(new SiloHostOptions { AllowOpenApi = true }, redis: "127.0.0.1:6379"));
        Assert.Equal("", Validate(new SiloHostOptions { ApiKey = AdminKey }, redis: "127.0.0.1:6379"));
        Assert.Equal("", Validate(new SiloHostOptions { FrontendApiKey = FrontendKey }, redis: "127.0.0.1:6379"));
        Assert.Equal("", Validate(new SiloHostOptions(), redis: null)); // the embedded default stays open for development
    }

    [Fact]
    public void With_redis_and_no_key_the_silo_host_does_not_start()
    {
        using var factory = SiloApiFactory.Create(null, ("SessionStore:Redis", "127.0.0.1:1"), ("SessionStore:TokenKeys", SiloApiFactory.TestTokenKeys));

        var failure = Assert.ThrowsAny<Exception>(() => factory.CreateClient());

        Assert.Contains("SessionStore:AllowOpenApi", failure.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(" admin-key-0123456789abcdef")]
    [InlineData("admin-key-0123456789abcdef ")]
    [InlineData("admin-key-0123456789abcdef\t")]
    [InlineData("admin-key-0123456789abcdef, admin-key-next-0123456789")]
    [InlineData("admin-key-0123456789abcdef,short")]
    [InlineData("admin-key-0123456789abcdef,")]
    [InlineData("")]
    [InlineData("admin-key-0123456789abcdé")]
    public void A_key_that_no_header_could_carry_fails_validation_without_being_repeated(string key)
    {
        foreach (var (options, setting) in new[] { (new SiloHostOptions { ApiKey = key }, "SessionStore:ApiKey"), (new SiloHostOptions { FrontendApiKey = key }, "SessionStore:FrontendApiKey") })
        {
            var failures = Validate(options, redis: null);

            Assert.Contains(setting, failures, StringComparison.Ordinal);
            Assert.DoesNotContain("0123456789", failures, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_frontend_key_that_is_also_an_admin_key_fails_validation()
    {
        var failures = Validate(new SiloHostOptions { ApiKey = AdminKey, FrontendApiKey = FrontendKey + "," + AdminKey }, redis: null);

        Assert.Contains("SessionStore:FrontendApiKey must not repeat", failures, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_frontend_key_reaches_only_the_token_routes_and_every_admin_key_reaches_every_route()
    {
        await using var factory = SiloApiFactory.Create(null, ("SessionStore:ApiKey", AdminKey + "," + NextAdminKey), ("SessionStore:FrontendApiKey", FrontendKey));
        using var frontend = factory.CreateClient();
        frontend.DefaultRequestHeaders.Add(ApiKeyMiddleware.Header, FrontendKey);

        using var created = await frontend.PostAsJsonAsync("/sessions", new { userId = "scoped" }, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var token = JsonDocument.Parse(await created.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("token").GetString();
        using var validate = new HttpRequestMessage(HttpMethod.Get, "/sessions/current");
        validate.Headers.Add("X-Session-Token", token);
        Assert.Equal(HttpStatusCode.OK, (await frontend.SendAsync(validate, Ct)).StatusCode);

        await HttpApiTests.AssertProblem(await frontend.GetAsync("/users/scoped/sessions", Ct), HttpStatusCode.Forbidden);
        await HttpApiTests.AssertProblem(await frontend.DeleteAsync("/users/scoped/sessions/abc", Ct), HttpStatusCode.Forbidden);
        await HttpApiTests.AssertProblem(await frontend.PostAsJsonAsync("/users/scoped/sessions/revoke-all", new { }, Ct), HttpStatusCode.Forbidden);
        await HttpApiTests.AssertProblem(await frontend.GetAsync("/stats", Ct), HttpStatusCode.Forbidden);

        foreach (var key in new[] { AdminKey, NextAdminKey })
        {
            using var admin = factory.CreateClient();
            admin.DefaultRequestHeaders.Add(ApiKeyMiddleware.Header, key);
            Assert.Equal(1, JsonDocument.Parse(await admin.GetStringAsync("/users/scoped/sessions", Ct)).RootElement.GetProperty("sessions").GetArrayLength());
            Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("/stats", Ct)).StatusCode);
        }
    }

    [Fact]
    public async Task Refused_keys_are_logged_without_the_key_and_an_address_past_its_budget_gets_429_with_retry_after()
    {
        var logs = new RecordingLog();
        await using var factory = SiloApiFactory.Create(null, ("SessionStore:ApiKey", AdminKey));
        await using var logged = factory.WithWebHostBuilder(b => b.ConfigureLogging(l => l.AddProvider(logs)));
        using var http = logged.CreateClient();
        const string Guess = "guessed-key-0123456789abcdef";

        using (var missing = await http.GetAsync("/stats", Ct))
        {
            await HttpApiTests.AssertProblem(missing, HttpStatusCode.Unauthorized); // no key
            Assert.Equal("ApiKey header=\"X-Api-Key\"", missing.Headers.WwwAuthenticate.ToString());
        }

        for (var i = 1; i < FailedApiKeyLimiter.FailuresPerMinute; i++)
        {
            using var wrong = new HttpRequestMessage(HttpMethod.Get, "/stats");
            wrong.Headers.Add(ApiKeyMiddleware.Header, Guess);
            await HttpApiTests.AssertProblem(await http.SendAsync(wrong, Ct), HttpStatusCode.Unauthorized);
        }

        using var right = new HttpRequestMessage(HttpMethod.Get, "/stats");
        right.Headers.Add(ApiKeyMiddleware.Header, AdminKey);
        using var limited = await http.SendAsync(right, Ct);
        await HttpApiTests.AssertProblem(limited, HttpStatusCode.TooManyRequests); // even the right key, so guessing stops
        Assert.InRange(limited.Headers.RetryAfter!.Delta!.Value, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(1));
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health", Ct)).StatusCode);

        Assert.Equal(FailedApiKeyLimiter.FailuresPerMinute, logs.Entries.Count(e => e.Id == 5202));
        Assert.Single(logs.Entries, e => e.Id == 5203);
        Assert.Contains(logs.Entries, e => e.Id == 5202 && e.Message.Contains("missing", StringComparison.Ordinal));
        Assert.Contains(logs.Entries, e => e.Id == 5202 && e.Message.Contains("wrong", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Entries, e => e.Message.Contains("0123456789", StringComparison.Ordinal));
    }

    [Fact]
    public void The_limiter_serves_an_address_again_when_its_minute_ends_and_counts_an_ipv6_caller_by_its_64()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var limiter = new FailedApiKeyLimiter(time);
        var caller = FailedApiKeyLimiter.Caller(IPAddress.Parse("2001:db8:1:2:aaaa::1"));
        Assert.Equal(caller, FailedApiKeyLimiter.Caller(IPAddress.Parse("2001:db8:1:2:bbbb::9")));
        Assert.NotEqual(caller, FailedApiKeyLimiter.Caller(IPAddress.Parse("2001:db8:1:3::1")));
        Assert.Equal("192.0.2.1", FailedApiKeyLimiter.Caller(IPAddress.Parse("::ffff:192.0.2.1")));

        for (var i = 1; i < FailedApiKeyLimiter.FailuresPerMinute; i++)
        {
            Assert.False(limiter.Failed(caller));
        }

        Assert.Null(limiter.RetryAfter(caller));
        Assert.True(limiter.Failed(caller));
        Assert.Equal(TimeSpan.FromMinutes(1), limiter.RetryAfter(caller));
        Assert.Null(limiter.RetryAfter("192.0.2.2")); // other addresses are not affected

        time.Advance(TimeSpan.FromMinutes(1));
        Assert.Null(limiter.RetryAfter(caller));
    }

    [Fact]
    public void The_limiter_remembers_a_bounded_number_of_addresses()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var limiter = new FailedApiKeyLimiter(time);

        for (var i = 0; i < FailedApiKeyLimiter.MaxEntries * 2; i++)
        {
            limiter.Failed("addr" + i);
        }

        Assert.Equal(FailedApiKeyLimiter.MaxEntries + 1, limiter.Entries); // the full table plus the shared overflow budget
        time.Advance(TimeSpan.FromMinutes(2));
        limiter.Failed("late");
        Assert.Equal(1, limiter.Entries);
    }

    private static string Validate(SiloHostOptions options, string? redis) =>
        new SiloHostOptionsValidator(Options.Create(new SessionClusterOptions { Redis = redis })).Validate(null, options) is { Failed: true } result
            ? result.FailureMessage
            : "";
}
