using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;

namespace SessionGrains.WebFrontend;

/// <summary>
/// <c>GET /devices/events</c>: the signed-in user's session events as Server-Sent Events, which keep the devices page
/// current (<see cref="ISessionStore.SubscribeAsync"/>). Only that user's events, only public session ids. The stream
/// ends after this browser's own session ends: from then on it is signed out.
/// </summary>
internal static class DeviceEvents
{
    public const string Path = "/devices/events";

    /// <summary>A comment line after this much silence, so proxies keep the connection open.</summary>
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    public static async Task StreamAsync(HttpContext http, string? after, ISessionStore store, IGrainFactory grains)
    {
        var ct = http.RequestAborted;
        if (SessionGrainsTicketStore.UserId(http.User) is not { } userId || http.User.FindFirst(SessionGrainsTicketStore.SessionIdClaim)?.Value is not { } current)
        {
            http.Response.StatusCode = StatusCodes.Status401Unauthorized;
            return;
        }

        // An EventSource reconnects to the same URL with the id of the last event it got: that is where it resumes.
        var resume = http.Request.Headers["Last-Event-ID"] is [{ Length: > 0 } lastEventId] ? lastEventId : after;
        bool trimmed;
        try
        {
            // Checked before the answer starts (one read that does not wait): a bad position is a 400, not a broken stream.
            resume ??= await grains.GetGrain<ISessionEventFeedGrain>(0).EndAsync();
            trimmed = (await grains.GetGrain<ISessionEventFeedGrain>(0).ReadAsync(resume, userId, 1, TimeSpan.Zero)).Trimmed;
        }
        catch (ArgumentException)
        {
            http.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }

        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-store";
        http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await http.Response.StartAsync(ct);
        await http.Response.Body.FlushAsync(ct);
        if (trimmed)
        {
            // The log has trimmed events after the page's position: the page renders itself again (its script reloads).
            await WriteAsync(http, TrimmedFrame, ct);
            return;
        }

        var events = store.SubscribeAsync(userId, resume, ct).GetAsyncEnumerator(ct);
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

                await silence.CancelAsync();
                if (!await next)
                {
                    return;
                }

                var e = events.Current;
                await WriteAsync(http, Frame(e), ct);
                if (e.Kind == SessionEventKind.Rotated && e.PreviousSessionId == current)
                {
                    current = e.SessionId;
                }
                else if (e.Kind == SessionEventKind.Ended && e.SessionId == current)
                {
                    return; // signed out: this browser gets no more of the user's events
                }

                next = events.MoveNextAsync().AsTask();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The page was closed or left: the normal end of a stream.
        }
        catch (SessionEventsTrimmedException)
        {
            await WriteAsync(http, TrimmedFrame, CancellationToken.None);
        }
        finally
        {
            // The subscription ends with the request; its read in flight finishes before it is disposed.
            await ((Task)next).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await events.DisposeAsync();
        }
    }

    private const string TrimmedFrame = "event: trimmed\ndata: {}\n\n";

    /// <summary>One event: its position as the id (an EventSource resumes after it), its kind as the event name, what the page needs as JSON.</summary>
    private static string Frame(SessionEvent e) => new StringBuilder()
        .Append("id: ").Append(e.Position).Append('\n')
        .Append("event: ").Append(JsonNamingPolicy.CamelCase.ConvertName(e.Kind.ToString())).Append('\n')
        .Append("data: ").Append(JsonSerializer.Serialize(new { sessionId = e.SessionId, previousSessionId = e.PreviousSessionId })).Append("\n\n")
        .ToString();

    private static async Task WriteAsync(HttpContext http, string text, CancellationToken ct)
    {
        await http.Response.WriteAsync(text, ct);
        await http.Response.Body.FlushAsync(ct);
    }
}
