using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>One embedded silo shared by the route table's rows (the routes do not depend on the storage).</summary>
public sealed class EmbeddedSiloFixture : IAsyncDisposable
{
    public SiloApiFactory Factory { get; } = SiloApiFactory.Create();

    public ValueTask DisposeAsync() => Factory.DisposeAsync();
}

/// <summary>
/// Every route of the HTTP API against empty segments, trailing and doubled slashes, encoded slashes and repeated
/// query parameters: each answer is pinned, and nothing but what the row names is ended or changed. A new route
/// belongs in this table.
/// </summary>
public sealed class HttpRouteSafetyTests(EmbeddedSiloFixture silo) : IClassFixture<EmbeddedSiloFixture>
{
    private const string Both = "both";
    private const string FirstEnded = "second";
    private const string SecondEnded = "first";
    private const string NoneLeft = "none";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// method, path, JSON body, whether the first session's token is sent, the answer, which sessions remain.
    /// <c>{user}</c>, <c>{first}</c> and <c>{second}</c> are a fresh user with two sessions and their ids.
    /// </summary>
    public static TheoryData<string, string, string?, bool, int, string> Routes() => new()
    {
        // Revoke one device: only a well-formed id of the user's own session ends anything.
        { "DELETE", "/users/{user}/sessions/{first}", null, false, 204, FirstEnded },
        { "DELETE", "/users/{user}/sessions/{first}/", null, false, 204, FirstEnded },
        { "DELETE", "/users/{user}/sessions/{first}?sessionId={second}", null, false, 204, FirstEnded },
        { "DELETE", "/users/{user}/sessions/", null, false, 400, Both },
        { "DELETE", "/users/{user}/sessions", null, false, 400, Both },
        { "DELETE", "/users/{user}/sessions?except={first}", null, false, 400, Both },
        { "DELETE", "/users/{user}/sessions?except={first}&except={second}", null, false, 400, Both },
        { "DELETE", "/users/{user}/sessions//", null, false, 404, Both },
        { "DELETE", "/users/{user}/sessions//{first}", null, false, 404, Both },
        { "DELETE", "/users/{user}//sessions/{first}", null, false, 404, Both },
        { "DELETE", "/users//sessions/{first}", null, false, 404, Both },
        { "DELETE", "/users/{user}/sessions/%20", null, false, 404, Both },
        { "DELETE", "/users/{user}/sessions/%2F", null, false, 404, Both },
        { "DELETE", "/users/{user}/sessions/{first}%2F", null, false, 404, Both },
        { "DELETE", "/users/{user}/sessions/%2F{first}", null, false, 404, Both },
        { "DELETE", "/users/{user}%2Fsessions/{first}", null, false, 404, Both },
        { "DELETE", "/users/{user}/sessions/{first}x", null, false, 404, Both },
        { "DELETE", "/users/{user}/sessions/revoke-all", null, false, 404, Both },
        { "DELETE", "/users/{user}/sessions/revoke-all/", null, false, 404, Both },

        // Sign out everywhere: its own route; a malformed "except" is refused instead of ending the current session too.
        { "POST", "/users/{user}/sessions/revoke-all", """{"except":"{first}"}""", false, 200, SecondEnded },
        { "POST", "/users/{user}/sessions/revoke-all/", """{"except":"{first}"}""", false, 200, SecondEnded },
        { "POST", "/users/{user}/sessions/revoke-all", "{}", false, 200, NoneLeft },
        { "POST", "/users/{user}/sessions/revoke-all", null, false, 200, NoneLeft },
        { "POST", "/users/{user}/sessions/revoke-all", """{"except":""}""", false, 400, Both },
        { "POST", "/users/{user}/sessions/revoke-all", """{"except":" "}""", false, 400, Both },
        { "POST", "/users/{user}/sessions/revoke-all", """{"except":"{first}x"}""", false, 400, Both },
        { "POST", "/users/{user}/sessions/revoke-all", """{"except":5}""", false, 400, Both },
        { "POST", "/users/{user}/sessions/revoke-all", "not json", false, 400, Both },
        { "POST", "/users/{user}/sessions/revoke-all?except={first}", "{}", false, 400, Both },
        { "POST", "/users/{user}/sessions/revoke-all?except={first}&except={second}", """{"except":"{first}"}""", false, 400, Both },
        { "POST", "/users/{user}/sessions//revoke-all", """{"except":"{first}"}""", false, 404, Both },
        { "POST", "/users/{user}//sessions/revoke-all", """{"except":"{first}"}""", false, 404, Both },
        { "POST", "/users//sessions/revoke-all", """{"except":"{first}"}""", false, 404, Both },
        { "POST", "/users/{user}/sessions/revoke-all%2F", """{"except":"{first}"}""", false, 405, Both }, // the revoke-by-id pattern
        { "POST", "/users/{user}/sessions%2Frevoke-all", """{"except":"{first}"}""", false, 404, Both },
        { "POST", "/users/{user}/sessions", "{}", false, 405, Both },

        // List.
        { "GET", "/users/{user}/sessions/", null, false, 200, Both },
        { "GET", "/users/{user}/sessions?limit=1&limit=2", null, false, 400, Both },
        { "GET", "/users/{user}/sessions?cursor=a&cursor=b", null, false, 400, Both },
        { "GET", "/users//sessions", null, false, 404, Both },
        { "GET", "/users/{user}//sessions", null, false, 404, Both },
        { "GET", "/users/{user}%2Fsessions", null, false, 404, Both },

        // Token routes: without a token a matched route answers 400; with one, a stale version changes nothing.
        { "GET", "/sessions/current/", null, false, 400, Both },
        { "GET", "/sessions//current", null, false, 404, Both },
        { "GET", "/sessions/current%2F", null, false, 404, Both },
        { "DELETE", "/sessions/current/", null, false, 400, Both },
        { "DELETE", "/sessions//current", null, true, 404, Both },
        { "DELETE", "/sessions%2Fcurrent", null, true, 404, Both },
        { "POST", "/sessions/current/rotate/", null, false, 400, Both },
        { "POST", "/sessions/current//rotate", null, true, 404, Both },
        { "POST", "/sessions/current%2Frotate", null, true, 404, Both },
        { "PATCH", "/sessions/current/", """{"metadata":{"a":"b"},"expectedVersion":99}""", true, 409, Both },
        { "PATCH", "/sessions/current?expectedVersion=1&expectedVersion=1", """{"metadata":{"a":"b"},"expectedVersion":99}""", true, 409, Both },
        { "PATCH", "/sessions//current", """{"metadata":{"a":"b"}}""", true, 404, Both },

        // Create and stats.
        { "POST", "//sessions", """{"userId":"{user}"}""", false, 404, Both },
        { "POST", "/sessions%2F", """{"userId":"{user}"}""", false, 404, Both },
        { "GET", "/stats/", null, false, 200, Both },
        { "GET", "/stats?x=1&x=2", null, false, 200, Both },
        { "GET", "//stats", null, false, 404, Both },

        // Events (a stream once it starts, so only the answers that come before one): a repeated parameter is refused,
        // not joined into a user id or a position; the stream's own paths are not routes.
        { "GET", "/events?user={user}&user={user}", null, false, 400, Both },
        { "GET", "/events?after=0&after=0", null, false, 400, Both },
        { "GET", "/events?after={first}", null, false, 400, Both },
        { "GET", "/events/{user}", null, false, 404, Both },
        { "GET", "//events", null, false, 404, Both },
        { "POST", "/events", null, false, 405, Both },
    };

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task Each_route_answers_as_pinned_and_ends_only_what_it_names(string method, string path, string? body, bool sendToken, int expected, string remaining)
    {
        using var http = silo.Factory.CreateClient();
        var user = "route-" + Guid.NewGuid().ToString("N")[..10];
        var first = await CreateAsync(http, user);
        var second = await CreateAsync(http, user);
        string Fill(string text) => text.Replace("{user}", user, StringComparison.Ordinal)
            .Replace("{first}", first.SessionId, StringComparison.Ordinal).Replace("{second}", second.SessionId, StringComparison.Ordinal);

        using var request = new HttpRequestMessage(new HttpMethod(method), Fill(path));
        if (body is not null)
        {
            request.Content = new StringContent(Fill(body), Encoding.UTF8, "application/json");
        }

        if (sendToken)
        {
            request.Headers.Add("X-Session-Token", first.Token);
        }

        using var answer = await http.SendAsync(request, Ct);
        var text = await answer.Content.ReadAsStringAsync(Ct);
        Assert.True(expected == (int)answer.StatusCode, $"{method} {path}: expected {expected}, got {(int)answer.StatusCode} {text}");
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);

        var left = remaining switch
        {
            Both => new[] { first, second },
            FirstEnded => [second],
            SecondEnded => [first],
            _ => [],
        };
        var listed = JsonDocument.Parse(await http.GetStringAsync($"/users/{user}/sessions", Ct)).RootElement
            .GetProperty("sessions").EnumerateArray().Select(s => s.GetProperty("sessionId").GetString()!).Order().ToList();
        Assert.Equal(left.Select(s => s.SessionId).Order().ToList(), listed);
        foreach (var session in left)
        {
            using var check = new HttpRequestMessage(HttpMethod.Get, "/sessions/current");
            check.Headers.Add("X-Session-Token", session.Token);
            using var current = await http.SendAsync(check, Ct);
            Assert.Equal(HttpStatusCode.OK, current.StatusCode);
            var state = JsonDocument.Parse(await current.Content.ReadAsStringAsync(Ct)).RootElement;
            Assert.Equal(1, state.GetProperty("version").GetInt64()); // unchanged
        }
    }

    private static async Task<(string Token, string SessionId)> CreateAsync(HttpClient http, string user)
    {
        using var create = await http.PostAsJsonAsync("/sessions", new { userId = user }, Ct);
        Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        var created = JsonDocument.Parse(await create.Content.ReadAsStringAsync(Ct)).RootElement;
        return (created.GetProperty("token").GetString()!, created.GetProperty("sessionId").GetString()!);
    }
}
