using Microsoft.AspNetCore.Http;

namespace SessionGrains;

/// <summary>The <see cref="ClientInfo"/> of an HTTP request: the one place that reads it from ASP.NET Core.</summary>
public static class HttpClientInfo
{
    /// <summary>
    /// The connection's remote address and the request's <c>User-Agent</c> (null when absent or empty), as
    /// <see cref="ClientInfo.Normalize"/> keeps them (the User-Agent cut to <see cref="ClientInfo.MaxUserAgentLength"/>).
    /// </summary>
    public static ClientInfo From(HttpContext context) => From(context, ipHeader: null, userAgentHeader: null);

    /// <summary>
    /// As <see cref="From(HttpContext)"/>, except that <paramref name="ipHeader"/> or <paramref name="userAgentHeader"/>,
    /// when sent exactly once, is used instead: for a trusted caller that forwards its own client's address and agent.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="ipHeader"/> is sent once but is not one IPv4 or IPv6 address.</exception>
    public static ClientInfo From(HttpContext context, string? ipHeader, string? userAgentHeader)
    {
        ArgumentNullException.ThrowIfNull(context);
        var headers = context.Request.Headers;
        var forwardedIp = ipHeader is not null && headers[ipHeader] is [{ Length: > 0 } ip] ? ip : null;
        var client = new ClientInfo(
            forwardedIp ?? context.Connection.RemoteIpAddress?.ToString(),
            userAgentHeader is not null && headers[userAgentHeader] is [{ } agent] ? agent
                : headers.UserAgent.ToString() is { Length: > 0 } userAgent ? userAgent : null);
        try
        {
            return ClientInfo.Normalize(client)!;
        }
        catch (ArgumentException) when (forwardedIp is not null)
        {
            // Refused rather than replaced by the caller's own address, which would pass a backend's address off as its user's.
            throw new ArgumentException($"The {ipHeader} header must be one IPv4 or IPv6 address.", ipHeader);
        }
    }
}
