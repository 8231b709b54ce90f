using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>
/// What any caller of the HTTP API can send and the silo must not keep or grow on: client headers, random user ids,
/// user ids that are URLs (OpenID Connect subjects).
/// </summary>
public sealed class HttpUntrustedInputTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_huge_user_agent_is_cut_and_a_non_ip_client_address_is_refused_and_never_listed()
    {
        await using var factory = SiloApiFactory.Create();
        using var http = factory.CreateClient();
        var user = NewUser();
        var hugeAgent = "<b>" + new string('A', 12_000) + "</b>";

        using (var junkIp = Create(user, ip: "<b>not-an-ip</b>", agent: "Firefox/140"))
        {
            var refused = await http.SendAsync(junkIp, Ct);
            await HttpApiTests.AssertProblem(refused, HttpStatusCode.BadRequest);
            Assert.Contains("X-Client-IP", await refused.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }

        using var hugeUa = Create(user, ip: "2001:DB8:0::1", agent: hugeAgent);
        using var created = await http.SendAsync(hugeUa, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var token = (await Json(created)).GetProperty("token").GetString()!;

        // A validation with junk is refused too and leaves the last client as it was.
        using (var validate = new HttpRequestMessage(HttpMethod.Get, "/sessions/current"))
        {
            validate.Headers.Add("X-Session-Token", token);
            validate.Headers.Add("X-Client-IP", "<b>not-an-ip</b>");
            await HttpApiTests.AssertProblem(await http.SendAsync(validate, Ct), HttpStatusCode.BadRequest);
        }

        var listed = await http.GetStringAsync($"/users/{user}/sessions", Ct);
        Assert.DoesNotContain("not-an-ip", listed, StringComparison.Ordinal);
        var session = Assert.Single(JsonDocument.Parse(listed).RootElement.GetProperty("sessions").EnumerateArray());
        foreach (var client in new[] { session.GetProperty("createdFrom"), session.GetProperty("lastSeenFrom") })
        {
            Assert.Equal("2001:db8::1", client.GetProperty("ip").GetString()); // canonical form
            Assert.Equal(hugeAgent[..ClientInfo.MaxUserAgentLength], client.GetProperty("userAgent").GetString());
        }
    }

    [Fact]
    public async Task Five_thousand_random_user_queries_leave_no_index_in_memory_and_get_429_past_the_budget_while_real_users_are_served()
    {
        const int Budget = 50;
        const int Queries = 5_000;
        await using var factory = SiloApiFactory.Create(null, ("SessionStore:FailedTokenChecksPerMinute", Budget.ToString()));
        using var http = factory.CreateClient();
        var management = factory.Services.GetRequiredService<IGrainFactory>().GetGrain<IManagementGrain>(0);
        var real = NewUser();
        var realSession = (await Json(await http.PostAsJsonAsync("/sessions", new { userId = real }, Ct))).GetProperty("sessionId").GetString();

        var answers = new List<HttpStatusCode>();
        for (var i = 0; i < Queries; i++)
        {
            using (var answer = await http.GetAsync($"/users/random-{Guid.NewGuid():N}/sessions", Ct))
            {
                answers.Add(answer.StatusCode);
                if (answer.StatusCode == HttpStatusCode.TooManyRequests && answers.Count(s => s == HttpStatusCode.TooManyRequests) == 1)
                {
                    Assert.NotNull(answer.Headers.RetryAfter);
                }
            }

            if (i % 500 == 499)
            {
                // The same caller, past its budget, still sees a user who has sessions.
                var listed = await Json(await http.GetAsync($"/users/{real}/sessions", Ct));
                Assert.Equal(realSession, Assert.Single(listed.GetProperty("sessions").EnumerateArray()).GetProperty("sessionId").GetString());
            }
        }

        Assert.All(answers.Take(Budget), status => Assert.Equal(HttpStatusCode.OK, status));
        Assert.Equal(HttpStatusCode.TooManyRequests, answers[Budget]);
        Assert.True(answers.Count(s => s == HttpStatusCode.OK) <= 3 * Budget, $"{answers.Count(s => s == HttpStatusCode.OK)} answered 200");

        // Each empty index left after answering; only the real user's (and a few still on their way out) may remain.
        var indexes = 0;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        do
        {
            indexes = (await management.GetSimpleGrainStatistics(Ct))
                .Where(s => s.GrainType.StartsWith(typeof(UserSessionsGrain).FullName + ",", StringComparison.Ordinal))
                .Sum(s => s.ActivationCount);
        }
        while (indexes > 1 && DateTime.UtcNow < deadline && await Delay());
        Assert.InRange(indexes, 0, 1);
    }

    public static TheoryData<string, bool> UrlShapedUserIds() => new()
    {
        { "https://issuer.example/users/42", false },
        { "https://issuer.example/users/42", true },
        { "tenant/bob", false },
        { "tenant/bob", true },
        { "a?b#c%d e/ü", true },
    };

    [Theory]
    [MemberData(nameof(UrlShapedUserIds))]
    public async Task User_ids_with_slashes_are_reached_percent_encoded_by_every_user_route(string userId, bool kestrel)
    {
        await using var factory = SiloApiFactory.Create();
        if (kestrel)
        {
            factory.UseKestrel(0);
            factory.StartServer();
        }

        using var http = factory.CreateClient();
        var tag = Guid.NewGuid().ToString("N")[..8];
        var user = userId + tag;
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            using var create = await http.PostAsJsonAsync("/sessions", new { userId = user }, Ct);
            Assert.Equal(HttpStatusCode.Created, create.StatusCode);
            var created = await Json(create);
            Assert.Equal(user, created.GetProperty("userId").GetString());
            ids.Add(created.GetProperty("sessionId").GetString()!);
        }

        var path = "/users/" + Uri.EscapeDataString(user) + "/sessions";
        Assert.Equal(ids.Order(), (await Json(await http.GetAsync(path, Ct))).GetProperty("sessions").EnumerateArray().Select(s => s.GetProperty("sessionId").GetString()).Order());
        Assert.Equal(HttpStatusCode.NoContent, (await http.DeleteAsync($"{path}/{ids[0]}", Ct)).StatusCode);
        Assert.Equal(1, (await Json(await http.PostAsJsonAsync($"{path}/revoke-all", new { except = ids[2] }, Ct))).GetProperty("ended").GetInt32());
        Assert.Equal([ids[2]], (await Json(await http.GetAsync(path, Ct))).GetProperty("sessions").EnumerateArray().Select(s => s.GetProperty("sessionId").GetString()));
    }

    [Fact]
    public async Task A_user_id_spelled_with_a_literal_percent_2F_is_not_confused_with_one_holding_a_slash()
    {
        await using var factory = SiloApiFactory.Create();
        factory.UseKestrel(0);
        factory.StartServer();
        using var http = factory.CreateClient();
        var tag = Guid.NewGuid().ToString("N")[..8];
        var slash = "tenant/bob-" + tag;
        var literal = "tenant%2Fbob-" + tag;
        var slashSession = (await Json(await http.PostAsJsonAsync("/sessions", new { userId = slash }, Ct))).GetProperty("sessionId").GetString();
        var literalSession = (await Json(await http.PostAsJsonAsync("/sessions", new { userId = literal }, Ct))).GetProperty("sessionId").GetString();

        foreach (var (user, session) in new[] { (slash, slashSession), (literal, literalSession) })
        {
            var listed = await Json(await http.GetAsync("/users/" + Uri.EscapeDataString(user) + "/sessions", Ct));
            Assert.Equal(session, Assert.Single(listed.GetProperty("sessions").EnumerateArray()).GetProperty("sessionId").GetString());
        }
    }

    private static HttpRequestMessage Create(string user, string ip, string agent)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/sessions") { Content = JsonContent.Create(new { userId = user }) };
        request.Headers.TryAddWithoutValidation("X-Client-IP", ip);
        request.Headers.TryAddWithoutValidation("X-Client-User-Agent", agent);
        return request;
    }

    private static async Task<bool> Delay()
    {
        await Task.Delay(200, Ct);
        return true;
    }

    private static string NewUser() => "untrusted-" + Guid.NewGuid().ToString("N")[..10];

    private static async Task<JsonElement> Json(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement;
}
