using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>The silo's JSON HTTP API end to end, on the real host with Redis clustering, storage and reminders.</summary>
public sealed class HttpApiTests(RedisServer redis) : IAsyncLifetime
{
    private SiloApiFactory _factory = null!;
    private HttpClient _http = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync()
    {
        _factory = SiloApiFactory.Create(redis, ("SessionStore:MaxSessionsPerUser", "3"), ("SessionStore:LimitPolicy", "RejectNew"));
        _http = _factory.CreateClient();
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _factory.DisposeAsync();
    }

    [Fact]
    public async Task A_sessions_whole_life_over_http()
    {
        var user = NewUser();
        using var create = await _http.PostAsJsonAsync("/sessions", new { userId = user, role = "member", metadata = new { theme = "dark" } }, Ct);
        Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        var created = await Json(create);
        var token = created.GetProperty("token").GetString()!;
        var sessionId = created.GetProperty("sessionId").GetString()!;
        Assert.StartsWith(SessionToken.Prefix, token, StringComparison.Ordinal);
        Assert.Equal(user, created.GetProperty("userId").GetString());
        Assert.True(created.TryGetProperty("expiresAt", out _));

        // Where the session answers, no cache for what carries a token, and times common parsers read (milliseconds, UTC).
        Assert.Equal("/sessions/current", create.Headers.Location?.OriginalString);
        Assert.Equal("no-store", create.Headers.CacheControl?.ToString());
        Assert.All(new[] { "createdAt", "lastAccessedAt", "expiresAt", "absoluteExpiresAt" }, name =>
            Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", created.GetProperty(name).GetString()!));

        using var get = await Send(HttpMethod.Get, "/sessions/current", token);
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        var body = await get.Content.ReadAsStringAsync(Ct);
        Assert.DoesNotContain(token, body, StringComparison.Ordinal);
        Assert.Equal("dark", (await Json(get)).GetProperty("metadata").GetProperty("theme").GetString());

        using var patch = await Send(HttpMethod.Patch, "/sessions/current", token, new { metadata = new { cart = "3" }, expectedVersion = 1 });
        Assert.Equal(HttpStatusCode.OK, patch.StatusCode);
        Assert.Equal(2, (await Json(patch)).GetProperty("version").GetInt64());

        using var stale = await Send(HttpMethod.Patch, "/sessions/current", token, new { metadata = new { cart = "4" }, expectedVersion = 1 });
        await AssertProblem(stale, HttpStatusCode.Conflict);

        using var rotate = await Send(HttpMethod.Post, "/sessions/current/rotate", token);
        Assert.Equal(HttpStatusCode.OK, rotate.StatusCode);
        Assert.Equal("no-store", rotate.Headers.CacheControl?.ToString());
        var rotated = await Json(rotate);
        var newToken = rotated.GetProperty("token").GetString()!;
        Assert.NotEqual(token, newToken);
        await AssertProblem(await Send(HttpMethod.Get, "/sessions/current", token), HttpStatusCode.NotFound);

        var list = await Json(await _http.GetAsync($"/users/{user}/sessions", Ct));
        Assert.Equal([rotated.GetProperty("sessionId").GetString()], list.GetProperty("sessions").EnumerateArray().Select(s => s.GetProperty("sessionId").GetString()));
        Assert.DoesNotContain(sessionId, list.ToString(), StringComparison.Ordinal);

        using var delete = await Send(HttpMethod.Delete, "/sessions/current", newToken);
        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        await AssertProblem(await Send(HttpMethod.Delete, "/sessions/current", newToken), HttpStatusCode.NotFound);
        await AssertProblem(await Send(HttpMethod.Get, "/sessions/current", newToken), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Devices_can_be_listed_paged_revoked_one_by_one_and_all_but_one()
    {
        var user = NewUser();
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add((await Json(await _http.PostAsJsonAsync("/sessions", new { userId = user }, Ct))).GetProperty("sessionId").GetString()!);
        }

        var first = await Json(await _http.GetAsync($"/users/{user}/sessions?limit=2", Ct));
        Assert.Equal(2, first.GetProperty("sessions").GetArrayLength());
        var next = first.GetProperty("next").GetString();
        var second = await Json(await _http.GetAsync($"/users/{user}/sessions?limit=2&cursor={next}", Ct));
        Assert.Equal(1, second.GetProperty("sessions").GetArrayLength());
        Assert.False(second.TryGetProperty("next", out _));

        Assert.Equal(HttpStatusCode.NoContent, (await _http.DeleteAsync($"/users/{user}/sessions/{ids[0]}", Ct)).StatusCode);
        await AssertProblem(await _http.DeleteAsync($"/users/{user}/sessions/{ids[0]}", Ct), HttpStatusCode.NotFound);
        await AssertProblem(await _http.DeleteAsync($"/users/{NewUser()}/sessions/{ids[1]}", Ct), HttpStatusCode.NotFound);

        var ended = await Json(await _http.PostAsJsonAsync($"/users/{user}/sessions/revoke-all", new { except = ids[2] }, Ct));
        Assert.Equal(1, ended.GetProperty("ended").GetInt32());
        var remaining = await Json(await _http.GetAsync($"/users/{user}/sessions", Ct));
        Assert.Equal([ids[2]], remaining.GetProperty("sessions").EnumerateArray().Select(s => s.GetProperty("sessionId").GetString()));
    }

    [Fact]
    public async Task The_per_user_limit_answers_409_and_stats_count_live_sessions()
    {
        var user = NewUser();
        var before = (await Json(await _http.GetAsync("/stats", Ct))).GetProperty("activeSessions").GetInt64();
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.Created, (await _http.PostAsJsonAsync("/sessions", new { userId = user }, Ct)).StatusCode);
        }

        await AssertProblem(await _http.PostAsJsonAsync("/sessions", new { userId = user }, Ct), HttpStatusCode.Conflict);
        Assert.Equal(before + 3, (await Json(await _http.GetAsync("/stats", Ct))).GetProperty("activeSessions").GetInt64());
    }

    [Fact]
    public async Task A_two_second_session_answers_404_once_it_has_expired()
    {
        var created = await Json(await _http.PostAsJsonAsync("/sessions", new { userId = NewUser(), idleTimeoutSeconds = 2 }, Ct));
        var token = created.GetProperty("token").GetString()!;
        var expiresAt = created.GetProperty("expiresAt").GetDateTimeOffset();
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, "/sessions/current", token)).StatusCode);

        var wait = expiresAt.AddSeconds(2) - DateTimeOffset.UtcNow; // the read above slid it by its own small delay
        await Task.Delay(wait > TimeSpan.Zero ? wait : TimeSpan.Zero, Ct);

        await AssertProblem(await Send(HttpMethod.Get, "/sessions/current", token), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Health_is_200_when_the_silo_and_redis_are_up() =>
        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync("/health", Ct)).StatusCode);

    [Fact]
    public async Task The_host_keeps_membership_sessions_and_reminders_in_redis_under_its_service_id()
    {
        var created = await Json(await _http.PostAsJsonAsync("/sessions", new { userId = NewUser() }, Ct));

        // The expiry bucket registers its reminder and writes its state a moment after the create (one-way).
        var keys = new List<string>();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        do
        {
            await Task.Delay(200, Ct);
            keys.Clear();
            await foreach (var key in redis.Server.KeysAsync(pattern: "*" + _factory.ServiceId + "*"))
            {
                keys.Add(key.ToString());
            }
        }
        while (!keys.Any(k => k.StartsWith(_factory.ServiceId + "/b/", StringComparison.Ordinal)) && DateTime.UtcNow < deadline);

        Assert.Contains(_factory.ServiceId + "/s/" + created.GetProperty("sessionId").GetString(), keys);
        Assert.Contains(keys, k => k.StartsWith(_factory.ServiceId + "/u/", StringComparison.Ordinal));
        Assert.Contains(keys, k => k.Contains("members", StringComparison.OrdinalIgnoreCase) || k.Contains("membership", StringComparison.OrdinalIgnoreCase));
        Assert.Contains(keys, k => k.Contains("reminder", StringComparison.OrdinalIgnoreCase));
        Assert.Contains(keys, k => k.StartsWith(_factory.ServiceId + "/b/", StringComparison.Ordinal));
    }

    public static TheoryData<string, string> BadCreateBodies() => new()
    {
        { "malformed JSON", "{\"userId\": " },
        { "not JSON", "hello" },
        { "missing user id", "{}" },
        { "empty user id", "{\"userId\": \"\"}" },
        { "10 KB user id", $"{{\"userId\": \"{new string('u', 10 * 1024)}\"}}" },
        { "negative idle timeout", "{\"userId\": \"a\", \"idleTimeoutSeconds\": -1}" },
        { "absurd absolute timeout", "{\"userId\": \"a\", \"absoluteTimeoutSeconds\": 1e30}" },
        { "metadata over the limit", $"{{\"userId\": \"a\", \"metadata\": {{\"m\": \"{new string('m', 70 * 1024)}\"}}}}" },
        { "metadata of the wrong type", "{\"userId\": \"a\", \"metadata\": {\"m\": 5}}" },
    };

    [Theory]
    [MemberData(nameof(BadCreateBodies))]
    public async Task Bad_create_requests_get_a_400_problem(string _, string body)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        await AssertProblem(await _http.PostAsync("/sessions", content, Ct), HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task A_rotation_grace_window_and_a_users_count_are_reachable_over_http()
    {
        var user = NewUser();
        var first = await Json(await _http.PostAsJsonAsync("/sessions", new { userId = user }, Ct));
        await _http.PostAsJsonAsync("/sessions", new { userId = user }, Ct);
        var token = first.GetProperty("token").GetString()!;

        // With a grace window the old token keeps answering (for requests already on their way), as the new session.
        using var rotate = await Send(HttpMethod.Post, "/sessions/current/rotate", token, new { graceSeconds = 30 });
        Assert.Equal(HttpStatusCode.OK, rotate.StatusCode);
        var rotated = await Json(rotate);
        Assert.NotEqual(first.GetProperty("sessionId").GetString(), rotated.GetProperty("sessionId").GetString());
        using var old = await Send(HttpMethod.Get, "/sessions/current", token);
        Assert.Equal(HttpStatusCode.OK, old.StatusCode);
        Assert.Equal(rotated.GetProperty("sessionId").GetString(), (await Json(old)).GetProperty("sessionId").GetString());
        await AssertProblem(await Send(HttpMethod.Post, "/sessions/current/rotate", rotated.GetProperty("token").GetString()!, new { graceSeconds = -1 }), HttpStatusCode.BadRequest);

        Assert.Equal(2, (await Json(await _http.GetAsync($"/users/{user}/sessions/count", Ct))).GetProperty("count").GetInt32());
        Assert.Equal(0, (await Json(await _http.GetAsync($"/users/{NewUser()}/sessions/count", Ct))).GetProperty("count").GetInt32());
    }

    [Fact]
    public async Task Each_error_has_a_type_of_its_own_so_a_program_can_tell_them_apart()
    {
        static async Task<string> TypeOf(HttpResponseMessage response) => (await Json(response)).GetProperty("type").GetString()!;
        var user = NewUser();
        var created = await Json(await _http.PostAsJsonAsync("/sessions", new { userId = user }, Ct));
        var token = created.GetProperty("token").GetString()!;

        Assert.Equal("urn:sessiongrains:problem:session-not-found", await TypeOf(await Send(HttpMethod.Get, "/sessions/current", "junk")));
        using var wrongRoute = await _http.GetAsync("/v1/sessions/current", Ct);
        Assert.Equal(HttpStatusCode.NotFound, wrongRoute.StatusCode);
        Assert.Equal("urn:sessiongrains:problem:no-such-route", await TypeOf(wrongRoute));
        Assert.Equal("urn:sessiongrains:problem:version-conflict",
            await TypeOf(await Send(HttpMethod.Patch, "/sessions/current", token, new { metadata = new { a = "1" }, expectedVersion = 7 })));
        Assert.Equal("urn:sessiongrains:problem:invalid-request", await TypeOf(await Send(HttpMethod.Get, "/sessions/current", "")));
        await _http.PostAsJsonAsync("/sessions", new { userId = user }, Ct);
        await _http.PostAsJsonAsync("/sessions", new { userId = user }, Ct);
        Assert.Equal("urn:sessiongrains:problem:session-limit", await TypeOf(await _http.PostAsJsonAsync("/sessions", new { userId = user }, Ct)));
        using var tooLarge = new StringContent($"{{\"userId\": \"a\", \"role\": \"{new string('r', 300 * 1024)}\"}}", Encoding.UTF8, "application/json");
        Assert.Equal("urn:sessiongrains:problem:body-too-large", await TypeOf(await _http.PostAsync("/sessions", tooLarge, Ct)));
    }

    [Theory]
    [InlineData("{}", "userId")]
    [InlineData("{\"userId\": \" \"}", "userId")]
    [InlineData("{\"userId\": \"a\", \"idleTimeoutSeconds\": 0}", "idleTimeoutSeconds")]
    [InlineData("{\"userId\": \"a\", \"idleTimeoutSeconds\": -1, \"absoluteTimeoutSeconds\": 1e30}", "idleTimeoutSeconds", "absoluteTimeoutSeconds")]
    public async Task A_bad_request_body_is_a_validation_problem_naming_each_field_as_the_json_does(string body, params string[] fields)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await _http.PostAsync("/sessions", content, Ct);
        await AssertProblem(response, HttpStatusCode.BadRequest);
        var problem = await Json(response);
        Assert.Equal("urn:sessiongrains:problem:invalid-request", problem.GetProperty("type").GetString());
        var errors = problem.GetProperty("errors").EnumerateObject().ToDictionary(e => e.Name, e => Assert.Single(e.Value.EnumerateArray()).GetString()!);
        Assert.Equal(fields.Order(), errors.Keys.Order());
        Assert.All(errors, error => Assert.Contains(error.Key, error.Value, StringComparison.Ordinal)); // the message names the field as the JSON does
    }

    [Fact]
    public async Task An_oversized_body_gets_a_413_problem()
    {
        using var content = new StringContent($"{{\"userId\": \"a\", \"role\": \"{new string('r', 300 * 1024)}\"}}", Encoding.UTF8, "application/json");
        using var response = await _http.PostAsync("/sessions", content, Ct);
        await AssertProblem(response, HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal("Request body too large", (await Json(response)).GetProperty("title").GetString());
    }

    [Fact]
    public async Task A_missing_token_is_a_400_and_a_junk_token_a_404()
    {
        await AssertProblem(await _http.GetAsync("/sessions/current", Ct), HttpStatusCode.BadRequest);
        var forged = SessionTokenCodec.Ephemeral().Create();
        foreach (var junk in new[] { "junk", "sg1_test1_" + new string('*', 64), forged.SessionId, forged.Value })
        {
            await AssertProblem(await Send(HttpMethod.Get, "/sessions/current", junk), HttpStatusCode.NotFound);
            await AssertProblem(await Send(HttpMethod.Post, "/sessions/current/rotate", junk), HttpStatusCode.NotFound);
            await AssertProblem(await Send(HttpMethod.Delete, "/sessions/current", junk), HttpStatusCode.NotFound);
            await AssertProblem(await Send(HttpMethod.Patch, "/sessions/current", junk, new { metadata = new { a = "b" } }), HttpStatusCode.NotFound);
        }
    }

    [Fact]
    public async Task Bad_list_parameters_are_400_problems()
    {
        await AssertProblem(await _http.GetAsync("/users/alice/sessions?limit=0", Ct), HttpStatusCode.BadRequest);
        await AssertProblem(await _http.GetAsync("/users/alice/sessions?limit=abc", Ct), HttpStatusCode.BadRequest);
        await AssertProblem(await _http.GetAsync("/users/alice/sessions?cursor=%21%21", Ct), HttpStatusCode.BadRequest);
        await AssertProblem(await _http.GetAsync($"/users/{new string('u', 10 * 1024)}/sessions", Ct), HttpStatusCode.BadRequest);
    }

    private static string NewUser() => "http-" + Guid.NewGuid().ToString("N")[..10];

    private async Task<HttpResponseMessage> Send(HttpMethod method, string path, string token, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.TryAddWithoutValidation("X-Session-Token", token);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        return await _http.SendAsync(request, Ct);
    }

    private static async Task<JsonElement> Json(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement;

    internal static async Task AssertProblem(HttpResponseMessage response, HttpStatusCode expected)
    {
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(expected == response.StatusCode, $"expected {(int)expected}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal((int)expected, problem.GetProperty("status").GetInt32());
        Assert.DoesNotContain("   at ", body, StringComparison.Ordinal);
    }
}
