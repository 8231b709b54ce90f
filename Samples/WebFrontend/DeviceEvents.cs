using System.Text.Json;

namespace SessionGrains.WebFrontend;

/// <summary>
/// <c>GET /devices/events</c>: the signed-in user's session events as Server-Sent Events, which keep the devices page
/// current (<see cref="ISessionStore.SubscribeAsync"/>). Only that user's events, only public session ids. The stream
/// ends after this browser's own session ends: from then on it is signed out.
/// </summary>
internal static class DeviceEvents
{
    public const string Path = "/devices/events";

    public static async Task StreamAsync(HttpContext http, string? after, ISessionStore store, IGrainFactory grains)
    {
        if (SessionGrainsTicketStore.UserId(http.User) is not { } userId || http.User.FindFirst(SessionGrainsTicketStore.SessionIdClaim)?.Value is not { } current)
        {
            http.Response.StatusCode = StatusCodes.Status401Unauthorized;
            return;
        }

        string start;
        try
        {
            start = await SessionEventStream.StartAsync(http, grains, after, userId);
        }
        catch (ArgumentException)
        {
            http.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }
        catch (SessionEventsTrimmedException)
        {
            // The log no longer reaches back to the page's position: the EventSource gives up, and the page renders itself again.
            http.Response.StatusCode = StatusCodes.Status410Gone;
            return;
        }

        await SessionEventStream.WriteAsync(
            http,
            store,
            userId,
            start,
            e => JsonSerializer.Serialize(new { sessionId = e.SessionId, previousSessionId = e.PreviousSessionId }),
            isLast: e =>
            {
                if (e.Kind == SessionEventKind.Rotated && e.PreviousSessionId == current)
                {
                    current = e.SessionId;
                }

                // Signed out: this browser gets no more of the user's events.
                return e.Kind == SessionEventKind.Ended && e.SessionId == current;
            });
    }
}
