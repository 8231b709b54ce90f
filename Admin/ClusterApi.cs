using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace SessionGrains.Admin;

/// <summary>The cluster's HTTP API as the tool uses it; every failure becomes an <see cref="AdminCommandException"/>.</summary>
internal sealed class ClusterApi(HttpClient http, Uri baseUrl) : IDisposable
{
    public const string ApiKeyHeader = "X-Api-Key";

    public static ClusterApi Create(string url, string? apiKey, TimeSpan timeout)
    {
        if (!Uri.TryCreate(url.EndsWith('/') ? url : url + "/", UriKind.Absolute, out var baseUrl) || baseUrl.Scheme is not ("http" or "https"))
        {
            throw new AdminCommandException(ExitCodes.BadArgument, $"--url must be an absolute http(s) address, not '{url}'.");
        }

        // A refused or silent address fails within the connect timeout instead of the default 100 s.
        var handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5) };
        var http = new HttpClient(handler) { Timeout = timeout };
        if (!string.IsNullOrEmpty(apiKey))
        {
            http.DefaultRequestHeaders.Add(ApiKeyHeader, apiKey);
        }

        return new ClusterApi(http, baseUrl);
    }

    public async Task<List<JsonElement>> ListSessionsAsync(string userId, int pageSize, CancellationToken ct)
    {
        var sessions = new List<JsonElement>();
        string? cursor = null;
        do
        {
            var path = $"users/{Uri.EscapeDataString(userId)}/sessions?limit={pageSize}" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor));
            var page = await SendAsync<JsonElement>(HttpMethod.Get, path, body: null, ct);
            sessions.AddRange(page.GetProperty("sessions").EnumerateArray());
            cursor = page.TryGetProperty("next", out var next) && next.ValueKind == JsonValueKind.String ? next.GetString() : null;
        }
        while (cursor is not null);
        return sessions;
    }

    public Task RevokeAsync(string userId, string sessionId, CancellationToken ct) =>
        SendAsync<JsonElement?>(HttpMethod.Delete, $"users/{Uri.EscapeDataString(userId)}/sessions/{Uri.EscapeDataString(sessionId)}", body: null, ct);

    public async Task<int> RevokeAllAsync(string userId, string? except, CancellationToken ct) =>
        (await SendAsync<JsonElement>(HttpMethod.Post, $"users/{Uri.EscapeDataString(userId)}/sessions/revoke-all", new { except }, ct))
            .GetProperty("ended").GetInt32();

    /// <summary>The cluster's silos as the silo behind the address sees its membership table (<c>/cluster/silos</c>).</summary>
    public async Task<List<JsonElement>> SilosAsync(CancellationToken ct) =>
        (await SendAsync<JsonElement>(HttpMethod.Get, "cluster/silos", body: null, ct)).GetProperty("silos").EnumerateArray().ToList();

    public async Task<long> CountAsync(CancellationToken ct) =>
        (await SendAsync<JsonElement>(HttpMethod.Get, "stats", body: null, ct)).GetProperty("activeSessions").GetInt64();

    /// <summary>
    /// The silo's readiness (<c>/health/ready</c>): its status, and each failing check as "name: description". 503 is
    /// an answer here, not a failure.
    /// </summary>
    public async Task<(bool Healthy, string Status, string[] Failing)> HealthAsync(CancellationToken ct)
    {
        using var response = await SendRawAsync(HttpMethod.Get, "health/ready", body: null, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        if (response.StatusCode is not (HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable))
        {
            throw Failure(response.StatusCode, text, retryAfter: null);
        }

        var body = JsonDocument.Parse(text).RootElement;
        var failing = body.GetProperty("checks").EnumerateArray()
            .Where(c => c.GetProperty("status").GetString() != "Healthy")
            .Select(c => $"{c.GetProperty("name").GetString()}: {c.GetProperty("description").GetString()}")
            .ToArray();
        return (response.StatusCode == HttpStatusCode.OK, body.GetProperty("status").GetString() ?? "Unknown", failing);
    }

    private async Task<T> SendAsync<T>(HttpMethod method, string path, object? body, CancellationToken ct)
    {
        using var response = await SendRawAsync(method, path, body, ct);
        if (!response.IsSuccessStatusCode)
        {
            throw Failure(response.StatusCode, await response.Content.ReadAsStringAsync(ct), response.Headers.RetryAfter?.Delta);
        }

        return response.StatusCode == HttpStatusCode.NoContent
            ? default!
            : (await response.Content.ReadFromJsonAsync<T>(ct))!;
    }

    private async Task<HttpResponseMessage> SendRawAsync(HttpMethod method, string path, object? body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, new Uri(baseUrl, path));
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, options: AdminJson.Options);
        }

        try
        {
            return await http.SendAsync(request, ct);
        }
        catch (HttpRequestException e)
        {
            throw new AdminCommandException(ExitCodes.Unreachable, $"Cannot reach the cluster at {baseUrl}: {e.Message}");
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new AdminCommandException(ExitCodes.Unreachable, $"The cluster at {baseUrl} did not answer within {http.Timeout.TotalSeconds:0} s.");
        }
    }

    // The API answers errors as problem details; their detail says what went wrong without echoing the key.
    private static AdminCommandException Failure(HttpStatusCode status, string content, TimeSpan? retryAfter)
    {
        var detail = ProblemDetail(content);
        return status switch
        {
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => new(ExitCodes.Unauthorized,
                $"Unauthorized ({(int)status}): {detail ?? "the API key is missing or wrong"}. Pass the admin key with --api-key or SESSIONGRAINS_API_KEY."),
            HttpStatusCode.NotFound => new(ExitCodes.NotFound, $"Not found: {detail ?? "no such session"}."),
            HttpStatusCode.BadRequest => new(ExitCodes.BadArgument, $"Bad request: {detail ?? "the cluster refused the arguments"}."),
            _ => new(ExitCodes.Failed, $"The cluster answered {(int)status}: {detail ?? status.ToString()}.") { RetryAfter = retryAfter },
        };
    }

    private static string? ProblemDetail(string content)
    {
        try
        {
            using var json = JsonDocument.Parse(content);
            return json.RootElement.TryGetProperty("detail", out var detail) ? detail.GetString()?.TrimEnd('.')
                : json.RootElement.TryGetProperty("title", out var title) ? title.GetString()?.TrimEnd('.')
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public void Dispose() => http.Dispose();
}

internal static class AdminJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);
}
