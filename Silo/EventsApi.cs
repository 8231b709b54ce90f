using System.Text.Json;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;

namespace SessionGrains.Silo;

/// <summary>
/// <c>GET /events</c>: the session event log as Server-Sent Events (<c>text/event-stream</c>), for every user or one
/// (<c>?user=</c>). Each event is <c>id: position</c>, <c>event: kind</c>, <c>data: one-line JSON</c>; it names sessions by
/// public id and never carries a token. By user id like the <c>/users/…</c> routes, so it needs the admin key
/// (<see cref="ApiKeyMiddleware"/>: a frontend key does not reach it).
/// </summary>
internal static partial class EventsApi
{
    public const string Path = "/events";
    public const string LastEventIdHeader = SessionEventStream.LastEventIdHeader;
    public const string Tag = "Events";

    public static RouteHandlerBuilder MapEventsApi(this IEndpointRouteBuilder app) =>
        app.MapGet(Path, StreamAsync)
            .WithTags(Tag)
            .WithMetadata(new HeaderParameter(LastEventIdHeader, Required: false,
                "Resume after this event's id (an EventSource sends it when it reconnects); wins over the after query parameter."))
            .Produces<string>(StatusCodes.Status200OK, "text/event-stream")
            .Describe("StreamEvents",
                "Session events (created, rotated, ended, signal) as Server-Sent Events: of every user or of ?user=; from now on, after=0 for all retained, after= or Last-Event-ID to resume.",
                StatusCodes.Status400BadRequest, StatusCodes.Status410Gone);

    private static async Task StreamAsync(HttpContext http, string? user, string? after, ISessionStore store, IGrainFactory grains, IOptions<JsonOptions> json, ILoggerFactory loggers)
    {
        // Binding joins a repeated parameter with commas ("a,b" may be a user id): refused, so no one is filtered by a guess.
        foreach (var name in (string[])[nameof(user), nameof(after)])
        {
            if (http.Request.Query[name].Count > 1)
            {
                throw new ArgumentException($"{name} may be given once.", name);
            }
        }

        if (user is not null)
        {
            SessionIds.ValidateUserId(user, nameof(user));
        }

        string start;
        try
        {
            start = await SessionEventStream.StartAsync(http, grains, after, user);
        }
        catch (ArgumentException exception)
        {
            throw new ArgumentException($"after (or {LastEventIdHeader}) is not a position of this event log: use an event's id, or 0 for every event retained.", nameof(after), exception);
        }
        catch (Exception exception) when (exception is not (OperationCanceledException or SessionEventsTrimmedException))
        {
            // The cluster or the store did not answer: the client may try again, as for any other route.
            throw new SessionStoreUnavailableException("The event log could not be read; try again.", TimeSpan.FromSeconds(2), exception);
        }

        var options = json.Value.SerializerOptions;
        try
        {
            await SessionEventStream.WriteAsync(http, store, user, start, e => JsonSerializer.Serialize(SessionEventResponse.From(e), options));
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // The answer has started, so no problem document can follow: log it and end the stream; the client reconnects
            // with Last-Event-ID and misses nothing still retained.
            Log.StreamFailed(loggers.CreateLogger(typeof(EventsApi).FullName!), exception);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(5204, LogLevel.Warning, "An event stream (GET /events) ended on an error.")]
        public static partial void StreamFailed(ILogger logger, Exception exception);
    }
}
