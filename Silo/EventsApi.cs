using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
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
    public const string LastEventIdHeader = "Last-Event-ID";
    public const string Tag = "Events";

    /// <summary>
    /// How long the stream may stay silent before a comment line goes out: proxies and load balancers commonly close a
    /// connection idle for 30 to 60 s, and a client learns of a dead connection only by writing to it.
    /// </summary>
    public static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

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
        var ct = http.RequestAborted;

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

        // An EventSource reconnects to the URL it was given, after= included, and adds the id of the last event it got:
        // the header is the later word, so it wins.
        var resume = http.Request.Headers[LastEventIdHeader] is [{ Length: > 0 } lastEventId] ? lastEventId : after;
        var start = await StartAsync(grains, resume, user, ct);

        // From here on the answer is the stream: nothing may cache it, buffer it, or compress it into silence.
        http.Response.StatusCode = StatusCodes.Status200OK;
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-store";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await http.Response.StartAsync(ct);
        await http.Response.Body.FlushAsync(ct);

        var options = json.Value.SerializerOptions;
        var events = store.SubscribeAsync(user, start, ct).GetAsyncEnumerator(ct);
        var next = events.MoveNextAsync().AsTask();
        try
        {
            while (true)
            {
                using var silence = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var quiet = Task.Delay(KeepAlive, silence.Token);
                if (await Task.WhenAny(next, quiet) == quiet)
                {
                    ct.ThrowIfCancellationRequested();
                    await WriteAsync(http, ": keep-alive\n\n", ct);
                    continue;
                }

                await silence.CancelAsync(); // the timer is not needed any longer
                if (!await next)
                {
                    return;
                }

                await WriteAsync(http, Frame(events.Current, options), ct);
                next = events.MoveNextAsync().AsTask();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client went away: the normal end of a stream.
        }
        catch (SessionEventsTrimmedException trimmed)
        {
            // The stream fell behind what the log keeps: say so, once, and end (a reconnection after it gets a 410).
            await WriteAsync(http, $"event: trimmed\ndata: {JsonSerializer.Serialize(new { position = trimmed.Position })}\n\n", CancellationToken.None);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // The answer has started, so no problem document can follow: log it and end the stream; the client reconnects
            // with Last-Event-ID and misses nothing still retained.
            Log.StreamFailed(loggers.CreateLogger(typeof(EventsApi).FullName!), exception);
        }
        finally
        {
            // The subscription ends with the request's token; wait for its read in flight before disposing it.
            await ((Task)next).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await events.DisposeAsync();
        }
    }

    /// <summary>
    /// Where the stream starts, settled before the answer starts: a position that is not one of this log is still a 400,
    /// and a client that has the answer's headers misses nothing that happens after (the end of the log is read now,
    /// not at the first read).
    /// </summary>
    private static async Task<string> StartAsync(IGrainFactory grains, string? after, string? user, CancellationToken ct)
    {
        var feed = grains.GetGrain<ISessionEventFeedGrain>(0);
        try
        {
            if (after is null)
            {
                return await feed.EndAsync().WaitAsync(ct);
            }

            // The log checks the position, and whether it still reaches back to it; an answer with no wait costs one short read.
            if ((await feed.ReadAsync(after, user, 1, TimeSpan.Zero).WaitAsync(ct)).Trimmed)
            {
                throw new SessionEventsTrimmedException($"The event log no longer holds every event after {after}: it keeps only the newest. Rebuild from the /users routes, then reconnect without {LastEventIdHeader}.", after);
            }

            return after;
        }
        catch (SessionEventsTrimmedException)
        {
            throw;
        }
        catch (ArgumentException exception)
        {
            throw new ArgumentException($"after (or {LastEventIdHeader}) is not a position of this event log: use an event's id, or 0 for every event retained.", nameof(after), exception);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // The cluster or the store did not answer: the client may try again, as for any other route.
            throw new SessionStoreUnavailableException("The event log could not be read; try again.", TimeSpan.FromSeconds(2), exception);
        }
    }

    /// <summary>One event as SSE lines: the id resumes after it, the event name is its kind, the data one line of JSON.</summary>
    internal static string Frame(SessionEvent e, JsonSerializerOptions options)
    {
        var data = JsonSerializer.Serialize(SessionEventResponse.From(e), options);
        return new StringBuilder()
            .Append("id: ").Append(e.Position).Append('\n')
            .Append("event: ").Append(RedisSessionEvents.Name(e.Kind)).Append('\n')
            .Append("data: ").Append(data).Append("\n\n")
            .ToString();
    }

    private static async Task WriteAsync(HttpContext http, string text, CancellationToken ct)
    {
        await http.Response.WriteAsync(text, ct);
        await http.Response.Body.FlushAsync(ct);
    }

    private static partial class Log
    {
        [LoggerMessage(5204, LogLevel.Warning, "An event stream (GET /events) ended on an error.")]
        public static partial void StreamFailed(ILogger logger, Exception exception);
    }
}
