using System.Net.Http.Json;
using System.Text.Json;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>No log line names a token. (Every line of the whole run is also checked when the run ends.)</summary>
public sealed class LogSecrecyTests(RedisServer redis)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void The_watch_recognises_tokens_and_only_tokens()
    {
        var token = SessionTokenCodec.Ephemeral().Create();
        Assert.True(TokenLogWatch.ContainsToken($"validated {token.Value} ok"));
        Assert.False(TokenLogWatch.ContainsToken($"Session {SessionIds.ForLog(token.SessionId)} ended"));
        Assert.False(TokenLogWatch.ContainsToken(token.SessionId));
        Assert.False(TokenLogWatch.ContainsToken(token.ToString()));
    }

    [Fact]
    public async Task A_sessions_whole_life_over_http_logs_no_token_at_debug_and_trace()
    {
        var linesBefore = TokenLogWatch.Lines;
        await using var factory = SiloApiFactory.Create(redis);
        using var http = factory.CreateClient();

        var created = JsonDocument.Parse(await (await http.PostAsJsonAsync("/sessions", new { userId = "quiet" }, Ct)).Content.ReadAsStringAsync(Ct)).RootElement;
        var token = created.GetProperty("token").GetString()!;
        foreach (var (method, path) in new[] { (HttpMethod.Get, "/sessions/current"), (HttpMethod.Post, "/sessions/current/rotate"), (HttpMethod.Delete, "/sessions/current") })
        {
            using var request = new HttpRequestMessage(method, path);
            request.Headers.Add("X-Session-Token", token);
            using var response = await http.SendAsync(request, Ct);
            if (path.EndsWith("rotate", StringComparison.Ordinal))
            {
                token = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("token").GetString()!;
            }
        }

        Assert.True(TokenLogWatch.Lines > linesBefore + 10, "the hosts' logs were not seen");
        Assert.Empty(TokenLogWatch.LeakedLines);
    }
}
