using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>The silo host with no configuration (the embedded default), with an API key, and with bad settings.</summary>
public sealed class SiloHostTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task With_no_configuration_the_silo_serves_a_working_in_memory_store()
    {
        await using var factory = SiloApiFactory.Create();
        using var http = factory.CreateClient();

        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health", Ct)).StatusCode);
        using var create = await http.PostAsJsonAsync("/sessions", new { userId = "embedded" }, Ct);
        Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        var token = JsonDocument.Parse(await create.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("token").GetString();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/sessions/current");
        request.Headers.Add("X-Session-Token", token);
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(request, Ct)).StatusCode);
        Assert.Equal(1, JsonDocument.Parse(await http.GetStringAsync("/stats", Ct)).RootElement.GetProperty("activeSessions").GetInt64());
    }

    [Fact]
    public async Task Liveness_and_readiness_answer_json_naming_each_check_without_an_api_key()
    {
        await using var factory = SiloApiFactory.Create(null, ("SessionStore:ApiKey", "0123456789abcdef-test-key"));
        using var http = factory.CreateClient();

        foreach (var (path, checks) in new[] { ("/health/live", new[] { "membership-table" }), ("/health/ready", ["cluster-member", "storage", "membership-table"]), ("/health", ["cluster-member", "storage", "membership-table"]) })
        {
            using var response = await http.GetAsync(path, Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement;
            Assert.Equal("Healthy", body.GetProperty("status").GetString());
            Assert.Equal(checks.Order(), body.GetProperty("checks").EnumerateArray().Select(c => c.GetProperty("name").GetString()!).Order());
            Assert.All(body.GetProperty("checks").EnumerateArray(), c => Assert.False(string.IsNullOrEmpty(c.GetProperty("description").GetString())));
        }
    }

    [Fact]
    public async Task The_kubernetes_example_restarts_on_liveness_routes_on_readiness_and_probes_paths_the_silo_serves()
    {
        var manifest = await File.ReadAllTextAsync(Path.Combine(RepositoryDirectory.Root, "deploy", "kubernetes", "silo.yaml"), Ct);
        string Probe(string kind) => System.Text.RegularExpressions.Regex.Match(manifest, kind + @":\s+httpGet: \{ path: (?<path>\S+),").Groups["path"].Value;

        Assert.Equal("/health/live", Probe("livenessProbe"));
        Assert.Equal("/health/ready", Probe("readinessProbe"));
        Assert.Equal("/health/live", Probe("startupProbe"));
        await using var factory = SiloApiFactory.Create();
        using var http = factory.CreateClient();
        foreach (var path in new[] { Probe("livenessProbe"), Probe("readinessProbe") })
        {
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(path, Ct)).StatusCode);
        }
    }

    [Fact]
    public async Task With_an_api_key_every_route_but_health_requires_it()
    {
        const string Key = "0123456789abcdef-test-key";
        await using var factory = SiloApiFactory.Create(null, ("SessionStore:ApiKey", Key));
        using var http = factory.CreateClient();

        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health", Ct)).StatusCode);
        await HttpApiTests.AssertProblem(await http.GetAsync("/stats", Ct), HttpStatusCode.Unauthorized);
        await HttpApiTests.AssertProblem(await http.PostAsJsonAsync("/sessions", new { userId = "a" }, Ct), HttpStatusCode.Unauthorized);

        http.DefaultRequestHeaders.Add("X-Api-Key", Key + "x");
        await HttpApiTests.AssertProblem(await http.GetAsync("/stats", Ct), HttpStatusCode.Unauthorized);

        http.DefaultRequestHeaders.Remove("X-Api-Key");
        http.DefaultRequestHeaders.Add("X-Api-Key", Key);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/stats", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await http.PostAsJsonAsync("/sessions", new { userId = "a" }, Ct)).StatusCode);
    }

    [Fact]
    public async Task Signals_show_on_the_session_and_a_throttled_burst_is_a_429_with_retry_after()
    {
        await using var factory = SiloApiFactory.Create(null, ("SessionStore:Signals:Burst", "Throttle"), ("SessionStore:Signals:BurstThreshold", "3"));
        using var http = factory.CreateClient();
        using var create = new HttpRequestMessage(HttpMethod.Post, "/sessions") { Content = JsonContent.Create(new { userId = "signals" }) };
        create.Headers.Add("X-Client-IP", "198.51.100.7");
        var token = JsonDocument.Parse(await (await http.SendAsync(create, Ct)).Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("token").GetString();

        async Task<HttpResponseMessage> ValidateFrom(string ip)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/sessions/current");
            request.Headers.Add("X-Session-Token", token);
            request.Headers.Add("X-Client-IP", ip);
            return await http.SendAsync(request, Ct);
        }

        var moved = JsonDocument.Parse(await (await ValidateFrom("203.0.113.8")).Content.ReadAsStringAsync(Ct)).RootElement;
        Assert.Equal(["ipChanged"], moved.GetProperty("signals").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(1, moved.GetProperty("ipChanges").GetInt32());

        Assert.Equal(HttpStatusCode.OK, (await ValidateFrom("203.0.113.8")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ValidateFrom("203.0.113.8")).StatusCode);
        using var throttled = await ValidateFrom("203.0.113.8");
        Assert.NotNull(throttled.Headers.RetryAfter?.Delta);
        Assert.InRange(throttled.Headers.RetryAfter!.Delta!.Value, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));
        await HttpApiTests.AssertProblem(throttled, HttpStatusCode.TooManyRequests);
    }

    [Fact]
    public async Task Failed_token_checks_from_one_address_are_limited_with_429_and_retry_after_and_valid_tokens_are_still_served()
    {
        await using var factory = SiloApiFactory.Create(null, ("SessionStore:FailedTokenChecksPerMinute", "5"));
        using var http = factory.CreateClient();
        var codec = factory.Services.GetRequiredService<SessionTokenCodec>();
        var genuine = JsonDocument.Parse(await (await http.PostAsJsonAsync("/sessions", new { userId = "limited" }, Ct)).Content.ReadAsStringAsync(Ct))
            .RootElement.GetProperty("token").GetString();

        async Task<HttpResponseMessage> Check(string? token)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/sessions/current");
            request.Headers.Add("X-Session-Token", token);
            return await http.SendAsync(request, Ct);
        }

        Assert.Equal(HttpStatusCode.OK, (await Check(genuine)).StatusCode); // successes cost nothing
        for (var i = 0; i < 5; i++)
        {
            await HttpApiTests.AssertProblem(await Check(codec.Create().Value), HttpStatusCode.NotFound); // passes the MAC, names no session
        }

        using var limited = await Check(codec.Create().Value);
        await HttpApiTests.AssertProblem(limited, HttpStatusCode.TooManyRequests);
        Assert.InRange(limited.Headers.RetryAfter!.Delta!.Value, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(1));
        await HttpApiTests.AssertProblem(await Check("sg1_x_6"), HttpStatusCode.NotFound); // a MAC failure costs nothing: never limited
        Assert.Equal(HttpStatusCode.OK, (await Check(genuine)).StatusCode); // a valid token is always served
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/stats", Ct)).StatusCode); // other routes are not affected
    }

    [Fact]
    public async Task Kestrel_refuses_oversized_headers_and_bodies()
    {
        await using var factory = SiloApiFactory.Create(null, ("SessionStore:MaxRequestHeadersBytes", "8192"));
        factory.UseKestrel(0);
        factory.StartServer();
        using var http = factory.CreateClient();

        using var hugeHeader = new HttpRequestMessage(HttpMethod.Get, "/health");
        hugeHeader.Headers.Add("X-Padding", new string('p', 10_000));
        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, (await http.SendAsync(hugeHeader, Ct)).StatusCode);

        using var hugeBody = new StringContent(new string(' ', 300 * 1024) + "{}", System.Text.Encoding.UTF8, "application/json");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await http.PostAsync("/sessions", hugeBody, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health", Ct)).StatusCode);
    }

    [Fact]
    public void The_silo_binds_each_setting_from_its_section_into_the_one_class_that_declares_it()
    {
        using var factory = SiloApiFactory.Create(
            null,
            ("SessionStore:ResponseTimeout", "00:00:07"),
            ("SessionStore:LeaseDuration", "00:00:03"),
            ("SessionStore:NearCache:MaxEntries", "77"),
            ("SessionStore:DefaultIdleTimeout", "00:11:00"),
            ("SessionStore:FailedTokenChecksPerMinute", "42"),
            ("SessionStore:BatchValidations", "false"));
        using var http = factory.CreateClient();
        var services = factory.Services;

        Assert.Equal(TimeSpan.FromSeconds(7), services.GetRequiredService<IOptions<SessionClusterOptions>>().Value.ResponseTimeout);
        Assert.Equal(TimeSpan.FromSeconds(7), services.GetRequiredService<IOptions<Orleans.Configuration.SiloMessagingOptions>>().Value.ResponseTimeout);
        Assert.Equal(factory.ServiceId, services.GetRequiredService<IOptions<Orleans.Configuration.ClusterOptions>>().Value.ServiceId);
        Assert.Equal(TimeSpan.FromMinutes(11), services.GetRequiredService<IOptions<SessionGrainsOptions>>().Value.DefaultIdleTimeout);
        Assert.Equal(42, services.GetRequiredService<IOptions<SessionGrains.Silo.SiloHostOptions>>().Value.FailedTokenChecksPerMinute);
        Assert.False(services.GetRequiredService<IOptions<SessionStoreOptions>>().Value.BatchValidations);
        Assert.Equal(TimeSpan.FromSeconds(3), services.GetRequiredService<IOptions<SessionGrainsOptions>>().Value.LeaseDuration);
        Assert.Equal(77, services.GetRequiredService<IOptions<SessionStoreOptions>>().Value.NearCache.MaxEntries);
        Assert.Single(services.GetServices<IValidateOptions<SessionClusterOptions>>());
        Assert.Single(services.GetServices<IValidateOptions<SessionStoreOptions>>());
    }

    [Fact]
    public void The_silo_runs_the_strongly_consistent_grain_directory_without_range_leases()
    {
        using var factory = SiloApiFactory.Create();
        using var http = factory.CreateClient();

        Assert.Equal("DistributedGrainDirectory", DefaultGrainDirectory(factory.Services).GetType().Name);
        Assert.Equal(TimeSpan.Zero, factory.Services.GetRequiredService<IOptions<Orleans.Configuration.GrainDirectoryOptions>>().Value.RangeLeaseDuration);
    }

    internal static Orleans.GrainDirectory.IGrainDirectory DefaultGrainDirectory(IServiceProvider services) =>
        services.GetRequiredKeyedService<Orleans.GrainDirectory.IGrainDirectory>(Orleans.GrainDirectory.GrainDirectoryAttribute.DEFAULT_GRAIN_DIRECTORY);

    [Theory]
    [InlineData("SessionStore:SiloPort", "0")]
    [InlineData("SessionStore:GatewayPort", "70000")]
    [InlineData("SessionStore:ClusterId", " ")]
    [InlineData("SessionStore:AdvertisedAddress", "not-an-ip")]
    [InlineData("SessionStore:ApiKey", "short")]
    [InlineData("SessionStore:DefaultIdleTimeout", "-00:01:00")]
    [InlineData("SessionStore:DefaultAbsoluteTimeout", "00:00:00")]
    [InlineData("SessionStore:MaxSessionsPerUser", "0")]
    [InlineData("SessionStore:MaxSessionDataBytes", "10")]
    [InlineData("SessionStore:LastAccessWriteFraction", "2")]
    [InlineData("SessionStore:Redis", "")]
    [InlineData("SessionStore:Signals:IPv4PrefixLength", "33")]
    [InlineData("SessionStore:Signals:CreationBurst", "Revoke")]
    [InlineData("SessionStore:FailedTokenChecksPerMinute", "-1")]
    public void Bad_settings_fail_at_start_up_with_a_message_naming_the_setting(string setting, string value)
    {
        using var factory = SiloApiFactory.Create(null, (setting, value));

        var failure = Assert.ThrowsAny<Exception>(() => factory.CreateClient());

        Assert.Contains(setting, AllMessages(failure), StringComparison.Ordinal);
    }

    [Fact]
    public void With_redis_the_silo_refuses_to_start_without_token_keys()
    {
        using var factory = SiloApiFactory.Create(redis: null, ("SessionStore:Redis", "127.0.0.1:1"), ("SessionStore:TokenKeys", null), ("SessionStore:AllowOpenApi", "true"));

        var failure = Assert.ThrowsAny<Exception>(() => factory.CreateClient());

        Assert.Contains("SessionStore:TokenKeys is required", AllMessages(failure), StringComparison.Ordinal);
    }

    [Fact]
    public void Malformed_token_keys_stop_the_silo_without_echoing_the_secret()
    {
        using var factory = SiloApiFactory.Create(null, ("SessionStore:TokenKeys", "k1:c2VjcmV0LXRvby1zaG9ydA=="));

        var failure = Assert.ThrowsAny<Exception>(() => factory.CreateClient());

        Assert.Contains("SessionStore:TokenKeys", AllMessages(failure), StringComparison.Ordinal);
        Assert.DoesNotContain("c2VjcmV0LXRvby1zaG9ydA", AllMessages(failure), StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_redis_string_is_reported_without_repeating_its_password()
    {
        using var factory = SiloApiFactory.Create(null, ("SessionStore:Redis", "127.0.0.1:1,password=hunter2-secret,nonsense=@@"));

        var failure = Assert.ThrowsAny<Exception>(() => factory.CreateClient());

        var messages = AllMessages(failure);
        Assert.Contains("SessionStore:Redis", messages, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2-secret", messages, StringComparison.Ordinal);
    }

    private static string AllMessages(Exception exception)
    {
        var messages = new List<string>();
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            messages.Add(e.Message);
            if (e is AggregateException aggregate)
            {
                messages.AddRange(aggregate.InnerExceptions.Select(AllMessages));
            }
        }

        return string.Join(" | ", messages);
    }
}
