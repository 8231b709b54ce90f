using System.Threading.RateLimiting;

namespace SessionGrains.Silo;

/// <summary>
/// Limits failed token checks (404 on a token route) per calling IP address: once a caller has used up
/// <see cref="SiloHostOptions.FailedTokenChecksPerMinute"/>, its token requests get 429 with
/// <c>Retry-After</c> until the minute is over. Guessing tokens is hopeless anyway (256 bits and a MAC);
/// this keeps a guesser from costing the cluster anything.
/// </summary>
internal sealed class FailedTokenLimiter(int failuresPerMinute) : IDisposable
{
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    private readonly PartitionedRateLimiter<string> _limiter = PartitionedRateLimiter.Create<string, string>(ip =>
        RateLimitPartition.GetFixedWindowLimiter(ip, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = failuresPerMinute,
            Window = Window,
            QueueLimit = 0,
        }));

    /// <summary>An endpoint filter for the token routes.</summary>
    public async ValueTask<object?> FilterAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var caller = http.Connection.RemoteIpAddress?.ToString() ?? "unknown";

        // Acquiring zero permits only asks whether any are left.
        using (var probe = _limiter.AttemptAcquire(caller, 0))
        {
            if (!probe.IsAcquired)
            {
                var retryAfter = probe.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan wait) ? wait : Window;
                RetryAfterHeader.Set(http.Response, retryAfter);
                return Results.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many requests",
                    detail: "Too many failed token checks from this address; try again later.");
            }
        }

        var result = await next(context);
        if (result is IStatusCodeHttpResult { StatusCode: StatusCodes.Status404NotFound })
        {
            _limiter.AttemptAcquire(caller, 1).Dispose();
        }

        return result;
    }

    public void Dispose() => _limiter.Dispose();
}
