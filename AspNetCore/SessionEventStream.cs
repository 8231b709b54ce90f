using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace SessionGrains;

/// <summary>
/// Session events (<see cref="ISessionStore.SubscribeAsync"/>) as Server-Sent Events on an ASP.NET Core response: what
/// the silo's <c>GET /events</c> and the demo frontend's devices page both serve. Each event is <c>id:</c> its position
/// (an <c>EventSource</c> sends it back as <c>Last-Event-ID</c> when it reconnects), <c>event:</c> its kind, and one
/// <c>data:</c> line the caller makes.
/// </summary>
public static class SessionEventStream
{
    /// <summary>The header an <c>EventSource</c> sends when it reconnects: the id of the last event it received.</summary>
    public const string LastEventIdHeader = "Last-Event-ID";

    /// <summary>
    /// How long a stream may stay silent before a comment line goes out: proxies and load balancers commonly close a
    /// connection idle for 30 to 60 s, and a server learns of a client gone only by writing to it.
    /// </summary>
    public static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Where a stream for this request starts, settled before the answer starts (so a bad position can still be an
    /// error, and nothing after the headers is missed): <see cref="LastEventIdHeader"/> when sent (an <c>EventSource</c>
    /// reconnects to the URL it was given, <paramref name="after"/> included, so the header is the later word), else
    /// <paramref name="after"/>, else the log's end now.
    /// </summary>
    /// <exception cref="ArgumentException">The position is not one of this cluster's log.</exception>
    /// <exception cref="SessionEventsTrimmedException">The log has trimmed events after the position.</exception>
    public static async Task<string> StartAsync(HttpContext http, IGrainFactory grains, string? after, string? userId = null)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(grains);
        var feed = grains.GetGrain<ISessionEventFeedGrain>(0);
        var resume = http.Request.Headers[LastEventIdHeader] is [{ Length: > 0 } lastEventId] ? lastEventId : after;
        if (resume is null)
        {
            return await feed.EndAsync().WaitAsync(http.RequestAborted).ConfigureAwait(false);
        }

        // The log checks the position and whether it still reaches back to it; a read that does not wait costs one short query.
        if ((await feed.ReadAsync(resume, userId, 1, TimeSpan.Zero).WaitAsync(http.RequestAborted).ConfigureAwait(false)).Trimmed)
        {
            throw new SessionEventsTrimmedException($"The event log no longer holds every event after {resume}: it keeps only the newest. Rebuild, then reconnect without {LastEventIdHeader}.", resume);
        }

        return resume;
    }

    /// <summary>
    /// Starts the answer (<c>text/event-stream</c>, not cached, not buffered) and writes <paramref name="userId"/>'s events
    /// (every user's when null) after <paramref name="start"/> as they come, with a comment line after each
    /// <see cref="KeepAlive"/> of silence. Ends when the client goes; after an event for which <paramref name="isLast"/>
    /// is true; or, when the log has trimmed events the stream had yet to read, with one <c>trimmed</c> event whose data
    /// names the position. Other failures (the cluster gone for good) are thrown: the answer has started, so the caller
    /// can only log them; the client reconnects with <see cref="LastEventIdHeader"/>.
    /// </summary>
    /// <param name="http">The request, whose answer becomes the stream; it ends when the request is aborted.</param>
    /// <param name="store">The store to subscribe through.</param>
    /// <param name="userId">Only this user's events; null for every user's.</param>
    /// <param name="start">Where the stream starts (<see cref="StartAsync"/>).</param>
    /// <param name="data">The event's <c>data:</c> line: one line, JSON by convention.</param>
    /// <param name="isLast">Says after which event the stream ends; null to run until the client goes.</param>
    public static async Task WriteAsync(
        HttpContext http, ISessionStore store, string? userId, string start, Func<SessionEvent, string> data, Func<SessionEvent, bool>? isLast = null)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(data);
        var ct = http.RequestAborted;

        // From here on the answer is the stream: nothing may cache it, buffer it, or compress it into silence.
        http.Response.StatusCode = StatusCodes.Status200OK;
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-store";
        http.Response.Headers["X-Accel-Buffering"] = "no"; // nginx
        http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await http.Response.StartAsync(ct).ConfigureAwait(false);
        await http.Response.Body.FlushAsync(ct).ConfigureAwait(false);

        var events = store.SubscribeAsync(userId, start, ct).GetAsyncEnumerator(ct);
        var next = events.MoveNextAsync().AsTask();
        try
        {
            while (true)
            {
                using var silence = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var quiet = Task.Delay(KeepAlive, silence.Token);
                if (await Task.WhenAny(next, quiet).ConfigureAwait(false) == quiet)
                {
                    ct.ThrowIfCancellationRequested();
                    await WriteAsync(http, ": keep-alive\n\n", ct).ConfigureAwait(false);
                    continue;
                }

                await silence.CancelAsync().ConfigureAwait(false);
                if (!await next.ConfigureAwait(false))
                {
                    return;
                }

                var e = events.Current;
                await WriteAsync(http, Frame(e, data(e)), ct).ConfigureAwait(false);
                if (isLast?.Invoke(e) == true)
                {
                    return;
                }

                next = events.MoveNextAsync().AsTask();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client went away: the normal end of a stream.
        }
        catch (SessionEventsTrimmedException trimmed)
        {
            // The stream fell behind what the log keeps: say so, once, and end (a reconnection after it is refused).
            await WriteAsync(http, $"event: trimmed\ndata: {JsonSerializer.Serialize(new { position = trimmed.Position })}\n\n", CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            // The subscription ends with the request's token; its read in flight finishes before it is disposed.
            await ((Task)next).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await events.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The name of an event kind on the stream: camelCase (<c>created</c>, <c>rotated</c>, <c>ended</c>, <c>signal</c>).</summary>
    public static string EventName(SessionEventKind kind) => JsonNamingPolicy.CamelCase.ConvertName(kind.ToString());

    private static string Frame(SessionEvent e, string data) => new StringBuilder()
        .Append("id: ").Append(e.Position).Append('\n')
        .Append("event: ").Append(EventName(e.Kind)).Append('\n')
        .Append("data: ").Append(data).Append("\n\n")
        .ToString();

    private static async Task WriteAsync(HttpContext http, string text, CancellationToken ct)
    {
        await http.Response.WriteAsync(text, ct).ConfigureAwait(false);
        await http.Response.Body.FlushAsync(ct).ConfigureAwait(false);
    }
}
