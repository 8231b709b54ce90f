using Microsoft.AspNetCore.Http;

namespace SessionGrains;

/// <summary>The <see cref="ClientInfo"/> of an HTTP request: the one place that reads it from ASP.NET Core.</summary>
public static class HttpClientInfo
{
    /// <summary>The connection's remote address and the request's <c>User-Agent</c> (null when absent or empty).</summary>
    public static ClientInfo From(HttpContext context) => From(context, ipHeader: null, userAgentHeader: null);

    /// <summary>
    /// As <see cref="From(HttpContext)"/>, except that <paramref name="ipHeader"/> or <paramref name="userAgentHeader"/>,
    /// when sent exactly once, is used instead: for a trusted caller that forwards its own client's address and agent.
    /// </summary>
    public static ClientInfo From(HttpContext context, string? ipHeader, string? userAgentHeader)
    {
        ArgumentNullException.ThrowIfNull(context);
        var headers = context.Request.Headers;
        return new ClientInfo(
            ipHeader is not null && headers[ipHeader] is [{ } ip] ? ip : context.Connection.RemoteIpAddress?.ToString(),
            userAgentHeader is not null && headers[userAgentHeader] is [{ } agent] ? agent
                : headers.UserAgent.ToString() is { Length: > 0 } userAgent ? userAgent : null);
    }
}
