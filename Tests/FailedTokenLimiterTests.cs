using System.Buffers.Text;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using SessionGrains.Silo;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>
/// The failed-token limiter stops what costs the cluster and cannot succeed, never the valid tokens of the
/// users next to it: junk from one address, interleaved with valid requests from the same address.
/// </summary>
public sealed class FailedTokenLimiterTests(RedisServer redis)
{
    private const int JunkRequests = 10_000;
    private const int ValidEvery = 50; // one GET and one PATCH with a valid token after this many junk requests
    private const string ApiKey = "0123456789abcdef-limiter-key";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Ten_thousand_junk_tokens_from_one_address_never_refuse_its_valid_tokens_and_reach_no_storage()
    {
        await using var factory = SiloApiFactory.Create(redis);
        using var http = factory.CreateClient();
        var valid = await CreateAsync(http, "junk-neighbour");
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(http, HttpMethod.Get, valid.Token)).StatusCode); // activates its grain
        using var metrics = new MetricRecorder([factory.Services]);
        var keyId = factory.Services.GetRequiredService<SessionTokenCodec>().CurrentKeyId;

        var junkAnswers = new Dictionary<HttpStatusCode, int>();
        var version = valid.Version;
        for (var i = 0; i < JunkRequests; i++)
        {
            // Half look like tokens of the silo's key with a wrong MAC, half are plain junk.
            var junk = i % 2 == 0 ? $"sg1_{keyId}_" + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(48)) : "junk-" + i;
            using (var answer = await SendAsync(http, i % 3 == 0 ? HttpMethod.Delete : HttpMethod.Get, junk))
            {
                junkAnswers[answer.StatusCode] = junkAnswers.GetValueOrDefault(answer.StatusCode) + 1;
            }

            if (i % ValidEvery == ValidEvery - 1)
            {
                version = await AssertServedAsync(http, valid.Token, version, i);
            }
        }

        // MAC failures are answered 404 at once: no grain call, so nothing to throttle.
        Assert.Equal(new Dictionary<HttpStatusCode, int> { [HttpStatusCode.NotFound] = JunkRequests }, junkAnswers);
        Assert.Equal(0, metrics.Total("sessiongrains.storage.operations", "operation=read", "storage=" + StorageNames.Sessions));
        Assert.Equal(valid.Version + (JunkRequests / ValidEvery), version);
    }

    [Fact]
    public async Task Ten_thousand_dead_tokens_from_one_address_get_429_without_grain_calls_while_its_valid_tokens_are_served()
    {
        const int Limit = 20;
        await using var factory = SiloApiFactory.Create(redis, ("SessionStore:FailedTokenChecksPerMinute", Limit.ToString()));
        using var http = factory.CreateClient();
        var codec = factory.Services.GetRequiredService<SessionTokenCodec>();
        var valid = await CreateAsync(http, "dead-neighbour");
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(http, HttpMethod.Get, valid.Token)).StatusCode);

        // Tokens that pass the MAC but name no live session: never created, or logged out.
        var dead = Enumerable.Range(0, 40).Select(_ => codec.Create().Value).ToList();
        for (var i = 0; i < 10; i++)
        {
            var ended = await CreateAsync(http, "dead-ended");
            Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(http, HttpMethod.Delete, ended.Token)).StatusCode);
            dead.Add(ended.Token);
        }

        using var metrics = new MetricRecorder([factory.Services]);
        var junkAnswers = new List<HttpStatusCode>();
        HttpResponseMessage? lastRefusal = null;
        var version = valid.Version;
        for (var i = 0; i < JunkRequests; i++)
        {
            var answer = await SendAsync(http, (i % 4) switch { 0 => HttpMethod.Patch, 1 => HttpMethod.Delete, _ => HttpMethod.Get }, dead[i % dead.Count]);
            junkAnswers.Add(answer.StatusCode);
            if (answer.StatusCode == HttpStatusCode.TooManyRequests)
            {
                lastRefusal?.Dispose();
                lastRefusal = answer;
            }
            else
            {
                answer.Dispose();
            }

            if (i % ValidEvery == ValidEvery - 1)
            {
                version = await AssertServedAsync(http, valid.Token, version, i);
            }
        }

        Assert.All(junkAnswers, status => Assert.Contains(status, new[] { HttpStatusCode.NotFound, HttpStatusCode.TooManyRequests }));
        Assert.All(junkAnswers.Take(Limit), status => Assert.Equal(HttpStatusCode.NotFound, status));
        Assert.Equal(HttpStatusCode.TooManyRequests, junkAnswers[Limit]);

        // Even if the run crosses a minute, at most a few windows' budgets are answered 404.
        Assert.True(junkAnswers.Count(s => s == HttpStatusCode.NotFound) <= 3 * Limit, $"{junkAnswers.Count(s => s == HttpStatusCode.NotFound)} answered 404");
        Assert.NotNull(lastRefusal);
        Assert.InRange(lastRefusal.Headers.RetryAfter!.Delta!.Value, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(1));
        await HttpApiTests.AssertProblem(lastRefusal, HttpStatusCode.TooManyRequests);

        // A dead session is remembered once a validation has found it dead: replays cost no storage read.
        var reads = metrics.Total("sessiongrains.storage.operations", "operation=read", "storage=" + StorageNames.Sessions);
        Assert.True(reads <= 3 * 3 * dead.Count, $"{reads} session reads for {JunkRequests} dead-token requests");
        Assert.Equal(valid.Version + (JunkRequests / ValidEvery), version);
    }

    [Fact]
    public async Task With_the_api_key_failures_are_counted_per_end_user_named_in_x_client_ip()
    {
        await using var factory = SiloApiFactory.Create(null, ("SessionStore:ApiKey", ApiKey), ("SessionStore:FailedTokenChecksPerMinute", "5"));
        using var http = factory.CreateClient();
        http.DefaultRequestHeaders.Add("X-Api-Key", ApiKey);
        var codec = factory.Services.GetRequiredService<SessionTokenCodec>();
        var valid = await CreateAsync(http, "end-user-a");

        for (var i = 0; i < 5; i++)
        {
            await HttpApiTests.AssertProblem(await SendAsync(http, HttpMethod.Get, codec.Create().Value, "198.51.100.1"), HttpStatusCode.NotFound);
        }

        await HttpApiTests.AssertProblem(await SendAsync(http, HttpMethod.Get, codec.Create().Value, "198.51.100.1"), HttpStatusCode.TooManyRequests);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(http, HttpMethod.Get, valid.Token, "198.51.100.1")).StatusCode);

        // Another end user of the same backend, and the backend itself, keep their own budgets.
        await HttpApiTests.AssertProblem(await SendAsync(http, HttpMethod.Get, codec.Create().Value, "198.51.100.2"), HttpStatusCode.NotFound);
        await HttpApiTests.AssertProblem(await SendAsync(http, HttpMethod.Get, codec.Create().Value), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Without_the_api_key_x_client_ip_is_not_believed_and_failures_count_per_calling_address()
    {
        await using var factory = SiloApiFactory.Create(null, ("SessionStore:FailedTokenChecksPerMinute", "5"));
        using var http = factory.CreateClient();
        var codec = factory.Services.GetRequiredService<SessionTokenCodec>();
        var valid = await CreateAsync(http, "untrusted");

        for (var i = 0; i < 5; i++)
        {
            await HttpApiTests.AssertProblem(await SendAsync(http, HttpMethod.Get, codec.Create().Value, $"203.0.113.{i}"), HttpStatusCode.NotFound);
        }

        await HttpApiTests.AssertProblem(await SendAsync(http, HttpMethod.Get, codec.Create().Value, "203.0.113.99"), HttpStatusCode.TooManyRequests);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(http, HttpMethod.Get, valid.Token)).StatusCode);
    }

    [Fact]
    public async Task A_limit_of_zero_turns_the_limiter_off()
    {
        await using var factory = SiloApiFactory.Create(null, ("SessionStore:FailedTokenChecksPerMinute", "0"));
        using var http = factory.CreateClient();
        var codec = factory.Services.GetRequiredService<SessionTokenCodec>();
        var dead = codec.Create().Value;

        for (var i = 0; i < 300; i++)
        {
            await HttpApiTests.AssertProblem(await SendAsync(http, HttpMethod.Get, i % 2 == 0 ? dead : codec.Create().Value), HttpStatusCode.NotFound);
        }
    }

    [Fact]
    public async Task The_limiters_memory_stays_bounded_and_a_full_table_still_serves_valid_tokens()
    {
        var codec = SessionTokenCodec.Ephemeral();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var limiter = new FailedTokenLimiter(codec, 5, trustClientIp: false, time);
        var dead = Results.NotFound();

        for (var i = 0; i < FailedTokenLimiter.MaxEntries + 10_000; i++)
        {
            await limiter.FilterAsync(Invocation(codec.Create().Value, new IPAddress(i + 1)), _ => ValueTask.FromResult<object?>(dead));
        }

        Assert.InRange(limiter.Entries, 1, 2 * FailedTokenLimiter.MaxEntries + 1);

        // Callers past the table share one budget, used up by now; their valid tokens still reach the grain and are served.
        var served = 0;
        var answer = await limiter.FilterAsync(Invocation(codec.Create().Value, IPAddress.Parse("203.0.113.200")), _ =>
        {
            served++;
            return ValueTask.FromResult<object?>(Results.Ok());
        });
        Assert.Equal(1, served);
        Assert.Equal(StatusCodes.Status200OK, Assert.IsAssignableFrom<IStatusCodeHttpResult>(answer).StatusCode);

        // Once the minute is over, a full table is swept.
        time.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(1));
        await limiter.FilterAsync(Invocation(codec.Create().Value, IPAddress.Parse("203.0.113.201")), _ => ValueTask.FromResult<object?>(dead));
        Assert.InRange(limiter.Entries, 1, 2);
    }

    [Fact]
    public async Task Over_the_budget_a_token_already_found_dead_is_refused_without_reaching_the_store()
    {
        var codec = SessionTokenCodec.Ephemeral();
        var limiter = new FailedTokenLimiter(codec, 2, trustClientIp: false, new FakeTimeProvider(DateTimeOffset.UtcNow));
        var dead = codec.Create().Value;
        var calls = 0;
        ValueTask<object?> Dead(EndpointFilterInvocationContext _)
        {
            calls++;
            return ValueTask.FromResult<object?>(Results.NotFound());
        }

        var answers = new List<int>();
        for (var i = 0; i < 10; i++)
        {
            answers.Add(Assert.IsAssignableFrom<IStatusCodeHttpResult>(await limiter.FilterAsync(Invocation(dead, IPAddress.Loopback), Dead)).StatusCode ?? 0);
        }

        Assert.Equal([404, 404, 429, 429, 429, 429, 429, 429, 429, 429], answers);
        Assert.Equal(3, calls); // two within the budget, one that went over it; the rest never reached the store
    }

    private static EndpointFilterInvocationContext Invocation(string token, IPAddress caller, string method = "GET")
    {
        var http = new DefaultHttpContext();
        http.Request.Method = method;
        http.Request.Headers["X-Session-Token"] = token;
        http.Connection.RemoteIpAddress = caller;
        return EndpointFilterInvocationContext.Create(http);
    }

    /// <summary>A GET and a PATCH with <c>expectedVersion</c> are both answered 200; returns the new version.</summary>
    private static async Task<long> AssertServedAsync(HttpClient http, string token, long version, int after)
    {
        using var get = await SendAsync(http, HttpMethod.Get, token);
        Assert.True(get.StatusCode == HttpStatusCode.OK, $"GET after {after + 1} junk requests: {(int)get.StatusCode}");
        using var patch = await SendAsync(http, HttpMethod.Patch, token, body: new { metadata = new { step = after.ToString() }, expectedVersion = version });
        Assert.True(patch.StatusCode == HttpStatusCode.OK, $"PATCH after {after + 1} junk requests: {(int)patch.StatusCode}");
        var next = JsonDocument.Parse(await patch.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("version").GetInt64();
        Assert.Equal(version + 1, next);
        return next;
    }

    private static async Task<(string Token, long Version)> CreateAsync(HttpClient http, string user)
    {
        using var create = await http.PostAsJsonAsync("/sessions", new { userId = user }, Ct);
        Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        var body = JsonDocument.Parse(await create.Content.ReadAsStringAsync(Ct)).RootElement;
        return (body.GetProperty("token").GetString()!, body.GetProperty("version").GetInt64());
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient http, HttpMethod method, string token, string? clientIp = null, object? body = null)
    {
        using var request = new HttpRequestMessage(method, "/sessions/current");
        request.Headers.TryAddWithoutValidation("X-Session-Token", token);
        if (clientIp is not null)
        {
            request.Headers.Add("X-Client-IP", clientIp);
        }

        request.Content = method == HttpMethod.Patch ? JsonContent.Create(body ?? new { metadata = new { a = "b" } }) : null;
        return await http.SendAsync(request, Ct);
    }
}
