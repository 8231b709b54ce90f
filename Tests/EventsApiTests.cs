using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using SessionGrains.Silo;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary><c>GET /events</c>: the event log as Server-Sent Events, read as a client reads it, on the real host with Redis.</summary>
public sealed class EventsApiTests(RedisServer redis) : IAsyncLifetime
{
    private const string AdminKey = "admin-key-0123456789abcdef";
    private const string FrontendKey = "frontend-key-0123456789ab";
    private static readonly TimeSpan EventTimeout = TimeSpan.FromSeconds(20);

    private SiloApiFactory _factory = null!;
    private HttpClient _http = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync()
    {
        _factory = SiloApiFactory.Create(redis);
        _http = Serve(_factory);
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _factory.DisposeAsync();
    }

    [Fact]
    public async Task A_stream_shows_a_sessions_creation_rotation_and_end_with_ids_and_never_a_token()
    {
        var user = NewUser();
        await using var stream = await SseStream.OpenAsync(_http, $"/events?user={user}");
        Assert.Equal("text/event-stream", stream.Response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("no-store", stream.Response.Headers.CacheControl?.ToString());

        var (token, first) = await CreateAsync(user);
        using var rotate = await Send(HttpMethod.Post, "/sessions/current/rotate", token);
        var rotated = await Json(rotate);
        var newToken = rotated.GetProperty("token").GetString()!;
        var second = rotated.GetProperty("sessionId").GetString()!;
        using var delete = await Send(HttpMethod.Delete, "/sessions/current", newToken);
        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);

        var created = await stream.NextAsync();
        var rotation = await stream.NextAsync();
        var ended = await stream.NextAsync();

        Assert.Equal(("created", "created", user, first), (created.Event, created.Data.GetProperty("kind").GetString(), created.Data.GetProperty("userId").GetString(), created.Data.GetProperty("sessionId").GetString()));
        Assert.Equal(("rotated", second, first), (rotation.Event, rotation.Data.GetProperty("sessionId").GetString(), rotation.Data.GetProperty("previousSessionId").GetString()));
        Assert.Equal(("ended", second, "deleted"), (ended.Event, ended.Data.GetProperty("sessionId").GetString(), ended.Data.GetProperty("reason").GetString()));
        Assert.Equal(3, new[] { created.Id, rotation.Id, ended.Id }.Where(id => id.Length > 0).Distinct().Count());
        Assert.All(new[] { created, rotation, ended }, e =>
        {
            Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", e.Data.GetProperty("at").GetString()!);
            Assert.Equal(JsonValueKind.Array, e.Data.GetProperty("signals").ValueKind);
        });
        Assert.Equal(JsonValueKind.Null, created.Data.GetProperty("reason").ValueKind);

        // Only ids and kinds: neither token, nor the token's secret part, ever reaches the stream.
        Assert.DoesNotContain(token, stream.Text, StringComparison.Ordinal);
        Assert.DoesNotContain(newToken, stream.Text, StringComparison.Ordinal);
        Assert.DoesNotContain(SessionToken.Prefix, stream.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reconnecting_with_last_event_id_gets_exactly_the_events_after_it_and_the_header_wins_over_after()
    {
        var user = NewUser();
        var sessions = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            sessions.Add((await CreateAsync(user)).SessionId);
        }

        SseEvent[] retained;
        await using (var fromStart = await SseStream.OpenAsync(_http, $"/events?user={user}&after={SessionEvent.Beginning}"))
        {
            retained = [await fromStart.NextAsync(), await fromStart.NextAsync(), await fromStart.NextAsync()];
        }

        Assert.Equal(sessions, retained.Select(e => e.Data.GetProperty("sessionId").GetString()));

        // As an EventSource reconnects: the URL it was given (after=0 still in it) and the id of the last event it got.
        await using var resumed = await SseStream.OpenAsync(_http, $"/events?user={user}&after={SessionEvent.Beginning}", lastEventId: retained[0].Id);
        Assert.Equal(retained[1].Id, (await resumed.NextAsync()).Id);
        Assert.Equal(retained[2].Id, (await resumed.NextAsync()).Id);

        // Then nothing twice and nothing skipped: the next event is the next change.
        var fourth = (await CreateAsync(user)).SessionId;
        var next = await resumed.NextAsync();
        Assert.Equal(("created", fourth), (next.Event, next.Data.GetProperty("sessionId").GetString()));

        await using var afterQuery = await SseStream.OpenAsync(_http, $"/events?user={user}&after={Uri.EscapeDataString(retained[2].Id)}");
        Assert.Equal(next.Id, (await afterQuery.NextAsync()).Id);
    }

    [Fact]
    public async Task A_user_filter_shows_only_that_users_events_and_takes_a_percent_encoded_id_with_slashes()
    {
        var user = "https://issuer.example/users/" + Guid.NewGuid().ToString("N")[..8];
        var other = NewUser();
        await using var everyone = await SseStream.OpenAsync(_http, "/events");
        await using var one = await SseStream.OpenAsync(_http, $"/events?user={Uri.EscapeDataString(user)}");

        var (_, othersSession) = await CreateAsync(other);
        var (_, usersSession) = await CreateAsync(user);

        var mine = await one.NextAsync();
        Assert.Equal((user, usersSession), (mine.Data.GetProperty("userId").GetString(), mine.Data.GetProperty("sessionId").GetString()));
        Assert.Equal(othersSession, (await everyone.NextAsync()).Data.GetProperty("sessionId").GetString());
        Assert.Equal(usersSession, (await everyone.NextAsync()).Data.GetProperty("sessionId").GetString());
    }

    [Theory]
    [InlineData("/events?after=nonsense", null)]
    [InlineData("/events?after=1-2-3", null)]
    [InlineData("/events?after=-1", null)]
    [InlineData("/events", "not-a-position")]
    [InlineData("/events?after=0", "12x-0")]
    [InlineData("/events?after=0&after=1-0", null)]
    [InlineData("/events?user=a&user=b", null)]
    [InlineData("/events?user=%20", null)]
    [InlineData("/events?user=a%00b", null)]
    public async Task A_bad_position_or_user_is_a_400_problem_before_any_stream(string path, string? lastEventId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (lastEventId is not null)
        {
            request.Headers.Add(EventsApi.LastEventIdHeader, lastEventId);
        }

        using var response = await _http.SendAsync(request, Ct);

        await HttpApiTests.AssertProblem(response, HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Resuming_after_an_event_the_log_has_trimmed_is_a_410_not_a_silent_jump()
    {
        // A silo of its own, in memory, keeping the fewest events allowed.
        await using var small = SiloApiFactory.Create(null, ("SessionStore:Events:RetainedEvents", "1000"));
        using var http = Serve(small);
        var store = small.Services.GetRequiredService<ISessionStore>();
        var user = NewUser();
        await store.CreateAsync(user, cancellationToken: Ct);
        string first;
        await using (var stream = await SseStream.OpenAsync(http, $"/events?user={user}&after=0"))
        {
            first = (await stream.NextAsync()).Id;
        }

        for (var batch = 0; batch < 11; batch++)
        {
            await Task.WhenAll(Enumerable.Range(0, 100).Select(i => store.CreateAsync($"{user}-{i}", cancellationToken: Ct)));
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, "/events");
        request.Headers.Add(EventsApi.LastEventIdHeader, first);
        using var response = await http.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        await HttpApiTests.AssertProblem(response, HttpStatusCode.Gone);
        Assert.Contains(ProblemTypes.EventsTrimmed, body, StringComparison.Ordinal);

        // From the beginning of what is kept, or from now, it streams as ever.
        await using var fromStart = await SseStream.OpenAsync(http, "/events?after=0");
        Assert.Equal("created", (await fromStart.NextAsync()).Event);
    }

    [Fact]
    public async Task With_keys_configured_the_stream_needs_the_admin_key_as_the_user_routes_do()
    {
        await using var keyed = SiloApiFactory.Create(redis, ("SessionStore:ApiKey", AdminKey), ("SessionStore:FrontendApiKey", FrontendKey));
        using var http = Serve(keyed);

        using var none = await http.GetAsync("/events", HttpCompletionOption.ResponseHeadersRead, Ct);
        await HttpApiTests.AssertProblem(none, HttpStatusCode.Unauthorized);
        using var frontend = new HttpRequestMessage(HttpMethod.Get, "/events");
        frontend.Headers.Add(ApiKeyMiddleware.Header, FrontendKey);
        using var refused = await http.SendAsync(frontend, HttpCompletionOption.ResponseHeadersRead, Ct);
        await HttpApiTests.AssertProblem(refused, HttpStatusCode.Forbidden);

        http.DefaultRequestHeaders.Add(ApiKeyMiddleware.Header, AdminKey);
        await using var stream = await SseStream.OpenAsync(http, "/events");
        Assert.Equal(HttpStatusCode.OK, stream.Response.StatusCode);
    }

    [Fact]
    public async Task A_silent_stream_gets_a_keep_alive_comment_and_ends_when_the_client_goes()
    {
        await using (var stream = await SseStream.OpenAsync(_http, $"/events?user={NewUser()}"))
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            timeout.CancelAfter(SessionEventStream.KeepAlive + TimeSpan.FromSeconds(10));
            Assert.Equal(": keep-alive", await stream.ReadLineAsync(timeout.Token));
        }

        // The client went (its stream ends with the request); the silo serves on, and the test host stops without waiting on it.
        using var health = await _http.GetAsync("/health/live", Ct);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    /// <summary>A client of the silo over a real socket: a stream is read as a browser or a proxy reads it, not through the in-memory test server.</summary>
    private static HttpClient Serve(SiloApiFactory factory)
    {
        factory.UseKestrel(0);
        factory.StartServer();
        var address = factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new HttpClient { BaseAddress = new Uri(address), Timeout = Timeout.InfiniteTimeSpan };
    }

    private static string NewUser() => "events-" + Guid.NewGuid().ToString("N")[..8];

    private async Task<(string Token, string SessionId)> CreateAsync(string user)
    {
        using var create = await _http.PostAsJsonAsync("/sessions", new { userId = user }, Ct);
        Assert.True(create.StatusCode == HttpStatusCode.Created, $"POST /sessions: {(int)create.StatusCode} {await create.Content.ReadAsStringAsync(Ct)}");
        var created = await Json(create);
        return (created.GetProperty("token").GetString()!, created.GetProperty("sessionId").GetString()!);
    }

    private async Task<HttpResponseMessage> Send(HttpMethod method, string path, string token)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.TryAddWithoutValidation(Microsoft.AspNetCore.Builder.SessionApi.TokenHeader, token);
        return await _http.SendAsync(request, Ct);
    }

    private static async Task<JsonElement> Json(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement;

    private sealed record class SseEvent(string Id, string Event, JsonElement Data);

    /// <summary>An open <c>GET /events</c> answer, read line by line as an EventSource would; keeps all it read.</summary>
    private sealed class SseStream(HttpResponseMessage response, StreamReader reader) : IAsyncDisposable
    {
        private readonly System.Text.StringBuilder _text = new();

        public HttpResponseMessage Response => response;

        /// <summary>Everything read so far, comments included.</summary>
        public string Text => _text.ToString();

        public static async Task<SseStream> OpenAsync(HttpClient http, string path, string? lastEventId = null)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            if (lastEventId is not null)
            {
                request.Headers.Add(EventsApi.LastEventIdHeader, lastEventId);
            }

            // The answer's headers come once the stream's start is settled: what happens from here on is in it.
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            timeout.CancelAfter(EventTimeout);
            var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                Assert.Fail($"GET {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
            }

            return new SseStream(response, new StreamReader(await response.Content.ReadAsStreamAsync(Ct)));
        }

        public async Task<string> ReadLineAsync(CancellationToken ct)
        {
            // WaitAsync: a read of the in-memory test server's stream may not notice the token by itself.
            var line = await reader.ReadLineAsync(ct).AsTask().WaitAsync(ct) ?? throw new EndOfStreamException("The event stream ended.");
            _text.Append(line).Append('\n');
            return line;
        }

        /// <summary>The next event (comments skipped): each of its fields on one line, its data one line of JSON.</summary>
        public async Task<SseEvent> NextAsync()
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            timeout.CancelAfter(EventTimeout);
            string? id = null, name = null, data = null;
            while (true)
            {
                var line = await ReadLineAsync(timeout.Token);
                if (line.Length == 0)
                {
                    if (data is not null)
                    {
                        return new SseEvent(id ?? "", name ?? "", JsonDocument.Parse(data).RootElement);
                    }

                    continue;
                }

                if (line.StartsWith(':'))
                {
                    continue;
                }

                var (field, value) = line.IndexOf(':', StringComparison.Ordinal) is var colon and > 0 ? (line[..colon], line[(colon + 1)..].TrimStart(' ')) : (line, "");
                switch (field)
                {
                    case "id": id = value; break;
                    case "event": name = value; break;
                    case "data": Assert.Null(data); data = value; break; // one data line per event
                    default: Assert.Fail($"unexpected field '{field}'"); break;
                }
            }
        }

        public ValueTask DisposeAsync()
        {
            reader.Dispose();
            response.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
