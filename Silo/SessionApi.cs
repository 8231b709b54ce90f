using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using SessionGrains;
using SessionGrains.Silo;

namespace Microsoft.AspNetCore.Builder;

/// <summary>
/// The JSON HTTP API over <see cref="ISessionStore"/>. The token travels only in the
/// <c>X-Session-Token</c> header, never in a URL. The end user's address and browser may be passed by a
/// calling backend in <c>X-Client-IP</c> / <c>X-Client-User-Agent</c>; otherwise the caller's own are used.
/// </summary>
public static class SessionApi
{
    /// <summary>Header that carries the session token.</summary>
    public const string TokenHeader = "X-Session-Token";
    internal const string ClientIpHeader = "X-Client-IP";
    internal const string ClientUserAgentHeader = "X-Client-User-Agent";
    private const string SessionsTag = "Sessions (by token)";
    private const string UsersTag = "Users (by id)";
    private const string ClusterTag = "Cluster";

    /// <summary>Maps every route of the API.</summary>
    public static IEndpointRouteBuilder MapSessionApi(this IEndpointRouteBuilder app)
    {
        var limiter = app.ServiceProvider.GetRequiredService<FailedTokenLimiter>();

        // Sessions and tokens are private to their user: no cache (a browser's, a proxy's) keeps an answer.
        var api = app.MapGroup("").AddEndpointFilter(async (context, next) =>
        {
            context.HttpContext.Response.Headers.CacheControl = "no-store";
            return await next(context);
        });
        var current = api.MapGroup("/sessions/current").AddEndpointFilter(limiter.FilterAsync).WithTags(SessionsTag)
            .WithMetadata(new HeaderParameter(TokenHeader, Required: true, "The session's token (never in the URL)."));

        api.MapPost("/sessions", async Task<Created<SessionResponse>> (CreateSessionRequest request, HttpContext http, ISessionStore store, CancellationToken ct) =>
        {
            var created = await store.CreateAsync(request.UserId, new SessionCreateOptions
            {
                Role = request.Role,
                Metadata = request.Metadata,
                IdleTimeout = Seconds(request.IdleTimeoutSeconds),
                AbsoluteTimeout = Seconds(request.AbsoluteTimeoutSeconds),
                Client = Client(http),
            }, ct);
            // The new session answers at /sessions/current, to its token.
            return TypedResults.Created("/sessions/current", SessionResponse.From(created.Session, created.Token.Value));
        }).WithTags(SessionsTag).WithClientHeaders().Describe("CreateSession", "Log in: create a session; the answer carries its token, once.", 400, 409, 413);

        current.MapGet("", async Task<Results<Ok<SessionResponse>, ProblemHttpResult>> (HttpContext http, ISessionStore store, CancellationToken ct) =>
            Found(await store.ValidateAsync(Token(http), Client(http), ct)))
            .WithClientHeaders()
            .Describe("ValidateSession", "Validate the session of X-Session-Token (slides its idle timeout).", 400, 404);

        current.MapPatch("", async Task<Results<Ok<SessionResponse>, ProblemHttpResult>> (UpdateSessionRequest request, HttpContext http, ISessionStore store, CancellationToken ct) =>
            Found(await store.UpdateAsync(Token(http), new SessionUpdate { Metadata = request.Metadata, Role = request.Role }, request.ExpectedVersion, ct)))
            .Describe("UpdateSession", "Change the session's metadata or role; with expectedVersion, only if no one wrote first.", 400, 404, 409, 413);

        current.MapPost("/rotate", async Task<Results<Ok<SessionResponse>, ProblemHttpResult>> (RotateRequest? request, HttpContext http, ISessionStore store, CancellationToken ct) =>
            await store.RotateAsync(Token(http), Seconds(request?.GraceSeconds) ?? TimeSpan.Zero, ct) is { } rotated
                ? TypedResults.Ok(SessionResponse.From(rotated.Session, rotated.Token.Value))
                : NotFound())
            .Describe("RotateSession", "Give the session a new token and public id; the old token ends, or after graceSeconds.", 400, 404);

        current.MapDelete("", async Task<Results<NoContent, ProblemHttpResult>> (HttpContext http, ISessionStore store, CancellationToken ct) =>
            await store.DeleteAsync(Token(http), ct) ? TypedResults.NoContent() : NotFound())
            .Describe("DeleteSession", "Log out: end the session of X-Session-Token.", 400, 404);

        // A user route that finds nothing counts against its caller in the limiter's budget (a random user id costs an index activation).
        api.MapGet("/users/{userId}/sessions", async Task<Results<Ok<SessionListResponse>, ProblemHttpResult>> (string userId, int? limit, string? cursor, HttpContext http, ISessionStore store, CancellationToken ct) =>
        {
            var page = await store.ListByUserAsync(UserId(http, userId), limit ?? 100, cursor, ct);
            return page.Sessions.IsEmpty && cursor is null && limiter.FoundNothing(http) is { } refused
                ? refused
                : TypedResults.Ok(new SessionListResponse(page.Sessions.Select(SessionSummaryResponse.From).ToList(), page.Next));
        }).WithTags(UsersTag).Describe("ListUserSessions", "A user's live sessions (\"your devices\"), oldest first, a page at a time.", 400);

        api.MapGet("/users/{userId}/sessions/count", async Task<Results<Ok<CountResponse>, ProblemHttpResult>> (string userId, HttpContext http, ISessionStore store, CancellationToken ct) =>
            await store.CountForUserAsync(UserId(http, userId), ct) is var count and > 0
                ? TypedResults.Ok(new CountResponse(count))
                : limiter.FoundNothing(http) is { } refused ? refused : TypedResults.Ok(new CountResponse(0)))
            .WithTags(UsersTag).Describe("CountUserSessions", "How many live sessions a user has.", 400);

        api.MapDelete("/users/{userId}/sessions/{sessionId}", async Task<Results<NoContent, ProblemHttpResult>> (string userId, string sessionId, HttpContext http, ISessionStore store, CancellationToken ct) =>
            await store.RevokeAsync(UserId(http, userId), sessionId, ct) ? TypedResults.NoContent() : limiter.FoundNothing(http) ?? NotFound())
            .WithTags(UsersTag).Describe("RevokeUserSession", "Sign out one device: end a user's session by its public id.", 400, 404);

        // Sign out everywhere has a route of its own, so no revoke URL with an empty or missing id can reach it.
        api.MapPost("/users/{userId}/sessions/revoke-all", async Task<Results<Ok<EndedResponse>, ProblemHttpResult>> (string userId, RevokeAllRequest? request, HttpContext http, ISessionStore store, CancellationToken ct) =>
        {
            var except = Except(request, http);
            var ended = await store.DeleteAllForUserAsync(UserId(http, userId), except, ct);
            return ended == 0 && except is null && limiter.FoundNothing(http) is { } refused ? refused : TypedResults.Ok(new EndedResponse(ended));
        }).WithTags(UsersTag).Describe("RevokeAllUserSessions", "Sign out everywhere: end every session of a user, but the one in except.", 400);

        // Where an empty session id (or the old bulk form) lands: refused, nothing ended.
        api.MapDelete("/users/{userId}/sessions", () =>
            TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, type: ProblemTypes.InvalidRequest, title: "Invalid request",
                detail: "A session id is required: DELETE /users/{userId}/sessions/{sessionId}. To sign out everywhere, POST /users/{userId}/sessions/revoke-all."))
            .WithTags(UsersTag).Describe("RevokeWithoutSessionId", "Refused: a revoke needs a session id (this route ends nothing).", 400);

        api.MapGet("/stats", async Task<Ok<StatsResponse>> (ISessionStore store, CancellationToken ct) =>
            TypedResults.Ok(new StatsResponse(await store.CountAsync(ct))))
            .WithTags(ClusterTag).Describe("Stats", "How many live sessions the cluster has.");

        // The silos' addresses lead to the Orleans ports: with no API key configured, only a caller on this host may list them.
        var keyed = app.ServiceProvider.GetRequiredService<IOptions<SiloHostOptions>>().Value.RequiresApiKey;
        api.MapGet("/cluster/silos", async Task<Results<Ok<ClusterSilosResponse>, ProblemHttpResult>> (HttpContext http, IGrainFactory grains, ILocalSiloDetails local, CancellationToken ct) =>
        {
            if (!keyed && !SiloDashboard.IsLoopback(http.Connection.RemoteIpAddress))
            {
                return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, type: ProblemTypes.Forbidden, title: "Forbidden",
                    detail: "With no SessionStore:ApiKey set, the silo list answers callers on the silo's own host only.");
            }

            // The membership table as Orleans reads it, dead rows included: the answer keeps the recently dead ones.
            var hosts = await grains.GetGrain<IManagementGrain>(0).GetDetailedHosts(onlyActive: false, ct);
            var now = (http.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System).GetUtcNow();
            return TypedResults.Ok(ClusterSilosResponse.From(hosts, local.SiloAddress, now));
        }).WithTags(ClusterTag).Describe("ClusterSilos", "The cluster's silos: address, name, host, status, start time, which one answered; dead ones for an hour.", 403);

        // Every user's events: by user id like the /users routes, so it takes the admin key (ApiKeyMiddleware).
        api.MapEventsApi();

        return app;
    }

    /// <summary>The end user's address and browser, which a backend calling for its users may pass (described for clients).</summary>
    private static RouteHandlerBuilder WithClientHeaders(this RouteHandlerBuilder route) => route.WithMetadata(
        new HeaderParameter(ClientIpHeader, Required: false, "The end user's IP address, when a backend calls for its user (one address)."),
        new HeaderParameter(ClientUserAgentHeader, Required: false, "The end user's User-Agent, when a backend calls for its user."));

    /// <summary>
    /// The route's OpenAPI name, summary and error answers (problem documents): its own, and those any request may get
    /// (401 without a valid API key, 429 when throttled, 503 while the cluster or its storage cannot answer). Its
    /// success answers come from its typed results.
    /// </summary>
    internal static RouteHandlerBuilder Describe(this RouteHandlerBuilder route, string name, string summary, params int[] problems)
    {
        route.WithName(name).WithSummary(summary);
        foreach (var status in problems.Concat([StatusCodes.Status401Unauthorized, StatusCodes.Status429TooManyRequests, StatusCodes.Status503ServiceUnavailable]).Distinct())
        {
            route.ProducesProblem(status);
        }

        return route;
    }

    private static string Token(HttpContext http) =>
        http.Request.Headers[TokenHeader] is [{ Length: > 0 } token]
            ? token
            : throw new ArgumentException($"The {TokenHeader} header is required (exactly once).", TokenHeader);

    /// <summary>
    /// The user id of a <c>/users/{userId}/...</c> route, so that any user id (an OpenID Connect subject such as
    /// <c>https://issuer.example/users/42</c>) can be reached percent-encoded as one segment: decoded exactly once from
    /// the request line. Servers decode every escape of the path but <c>%2F</c>, and <c>%25</c> too, so the routed value
    /// cannot tell <c>a%2Fb</c> from <c>a/b</c>; it serves only where no request line is kept (an in-memory test server).
    /// </summary>
    private static string UserId(HttpContext http, string routed)
    {
        var raw = http.Features.Get<IHttpRequestFeature>()?.RawTarget ?? "";
        var rawPath = raw.IndexOf('?', StringComparison.Ordinal) is var query and >= 0 ? raw[..query] : raw;
        var path = http.Request.PathBase.Value + http.Request.Path.Value;

        // Same segments as the routed path (no dot segments removed): the user id is the same count of segments from the end.
        if (rawPath.StartsWith('/') && rawPath.Count(c => c == '/') == path.Count(c => c == '/'))
        {
            var after = http.Request.Path.Value!.Count(c => c == '/') - 2; // "/users/{userId}" has two slashes up to the id
            return Uri.UnescapeDataString(rawPath.Split('/')[^(after + 1)]);
        }

        return routed.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
    }

    private static ClientInfo Client(HttpContext http) => HttpClientInfo.From(http, ClientIpHeader, ClientUserAgentHeader);

    // A malformed "except" would end the session the caller meant to keep, so it is refused rather than ignored.
    private static string? Except(RevokeAllRequest? request, HttpContext http) =>
        http.Request.Query.ContainsKey("except") ? throw new ArgumentException("except goes in the JSON body, not in the URL.", "except")
        : request?.Except is not { } except ? null
        : SessionIds.IsWellFormedSessionId(except) ? except
        : throw new ArgumentException("except must be a session id (or be left out to end every session).", "except");

    // In range: the request's validation checked it.
    private static TimeSpan? Seconds(double? seconds) => seconds is { } value ? TimeSpan.FromSeconds(value) : null;

    private static Results<Ok<SessionResponse>, ProblemHttpResult> Found(SessionInfo? session) =>
        session is null ? NotFound() : TypedResults.Ok(SessionResponse.From(session));

    private static ProblemHttpResult NotFound() =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, type: ProblemTypes.SessionNotFound, title: "Session not found",
            detail: "There is no live session for this token or id.");
}

/// <summary>A request header a route reads itself (not by binding), so the OpenAPI document describes it for clients.</summary>
internal sealed record class HeaderParameter(string Name, bool Required, string Description);
