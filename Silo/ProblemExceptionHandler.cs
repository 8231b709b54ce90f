using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc;

namespace SessionGrains.Silo;

/// <summary>
/// Turns exceptions into JSON problem bodies with the right status: bad input is a 4xx with a message the
/// caller can act on; anything else is a 500 that names no internals (no stack trace, no message).
/// </summary>
internal sealed partial class ProblemExceptionHandler(IProblemDetailsService problems, ILogger<ProblemExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken cancellationToken)
    {
        var (status, type, title, detail) = exception switch
        {
            BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } => (StatusCodes.Status413PayloadTooLarge, ProblemTypes.BodyTooLarge,
                "Request body too large", "The request body is larger than SessionStore:MaxRequestBodyBytes allows."),
            BadHttpRequestException bad => (bad.StatusCode, ProblemTypes.InvalidRequest, "Bad request", "The request could not be read (malformed JSON or parameters)."),
            SessionLimitExceededException limit => (StatusCodes.Status409Conflict, ProblemTypes.SessionLimit, "Session limit reached", limit.Message),
            SessionVersionConflictException conflict => (StatusCodes.Status409Conflict, ProblemTypes.VersionConflict, "Version conflict", conflict.Message),
            SessionThrottledException throttled => (StatusCodes.Status429TooManyRequests, ProblemTypes.SessionThrottled, "Too many requests", throttled.Message),
            SessionEventsTrimmedException trimmed => (StatusCodes.Status410Gone, ProblemTypes.EventsTrimmed, "Events trimmed", trimmed.Message),
            SessionStoreUnavailableException unavailable => (StatusCodes.Status503ServiceUnavailable, ProblemTypes.Unavailable, "Service unavailable", unavailable.Message),
            ArgumentException argument => (StatusCodes.Status400BadRequest, ProblemTypes.InvalidRequest, "Invalid request", Describe(argument)),
            _ => (StatusCodes.Status500InternalServerError, ProblemTypes.Internal, "Internal error", "The request failed; see the silo log."),
        };

        if (status >= 500 && exception is not SessionStoreUnavailableException)
        {
            Log.Unhandled(logger, exception, http.Request.Method, http.Request.Path);
        }

        http.Response.StatusCode = status;
        if (exception switch
            {
                SessionThrottledException throttled => throttled.RetryAfter,
                SessionStoreUnavailableException unavailable => unavailable.RetryAfter,
                _ => (TimeSpan?)null,
            } is { } retryAfter)
        {
            RetryAfterHeader.Set(http.Response, retryAfter);
        }

        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            Exception = null, // never let the exception's text or stack into the body
            ProblemDetails = new ProblemDetails { Status = status, Type = type, Title = title, Detail = detail },
        });
    }

    // A missing value says which one; ArgumentException.Message appends " (Parameter 'x')", and the API names fields in the message itself.
    private static string Describe(ArgumentException exception) =>
        exception is ArgumentNullException { ParamName: { } name } ? $"{name} is required." : StripParameter(exception);

    // ArgumentException.Message appends " (Parameter 'x')"; the API names fields in the message itself.
    private static string StripParameter(ArgumentException exception) =>
        exception.ParamName is { } name ? exception.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : exception.Message;

    private static partial class Log
    {
        [LoggerMessage(5201, LogLevel.Error, "Request {Method} {Path} failed.")]
        public static partial void Unhandled(ILogger logger, Exception exception, string method, PathString path);
    }
}

/// <summary>Rejects bodies over the configured size early, also on servers without Kestrel's limit (the test host).</summary>
internal static class RequestSizeLimit
{
    public static IApplicationBuilder UseRequestSizeLimit(this IApplicationBuilder app, long maxBytes) => app.Use(async (http, next) =>
    {
        if (http.Request.ContentLength > maxBytes)
        {
            throw new BadHttpRequestException("Request body too large.", StatusCodes.Status413PayloadTooLarge);
        }

        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature)
        {
            feature.MaxRequestBodySize = maxBytes;
        }

        await next(http);
    });
}
