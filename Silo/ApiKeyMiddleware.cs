using System.Security.Cryptography;
using System.Text;

namespace SessionGrains.Silo;

/// <summary>
/// When a key is configured, every route but the open ones (<see cref="OpenApiDocument.IsOpen"/>: health, the API description) needs one in <c>X-Api-Key</c>: an admin key
/// (<c>SessionStore:ApiKey</c>) for every route, a frontend key (<c>SessionStore:FrontendApiKey</c>) for
/// <c>POST /sessions</c> and <c>/sessions/current</c> only (403 elsewhere). Keys are compared as SHA-256 digests with
/// <see cref="CryptographicOperations.FixedTimeEquals"/> against every configured key, so neither the content nor the
/// length of a key, nor which one matched, leaks through timing. Missing or wrong keys are logged (never the value)
/// and limited per calling address by <see cref="FailedApiKeyLimiter"/>.
/// </summary>
internal static partial class ApiKeyMiddleware
{
    public const string Header = "X-Api-Key";

    private enum Access
    {
        None,
        Frontend,
        Admin,
    }

    public static IApplicationBuilder UseApiKey(this IApplicationBuilder app, SiloHostOptions options)
    {
        if (!options.RequiresApiKey)
        {
            return app;
        }

        var admin = Digests(options.ApiKey);
        var frontend = Digests(options.FrontendApiKey);
        var limiter = app.ApplicationServices.GetRequiredService<FailedApiKeyLimiter>();
        var logger = app.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ApiKeyMiddleware).FullName!);
        return app.Use(async (http, next) =>
        {
            var path = http.Request.Path;
            if (OpenApiDocument.IsOpen(path))
            {
                await next(http);
                return;
            }

            var caller = FailedApiKeyLimiter.Caller(http.Connection.RemoteIpAddress);
            if (limiter.RetryAfter(caller) is { } wait)
            {
                RetryAfterHeader.Set(http.Response, wait);
                await Problem(http, StatusCodes.Status429TooManyRequests, ProblemTypes.TooManyFailures, "Too many requests", $"Too many requests without a valid {Header} from this address; try again later.");
                return;
            }

            var presented = http.Request.Headers[Header] is [{ } value] ? value : null;
            var access = presented is null ? Access.None : Match(presented, admin, frontend);
            if (access == Access.Admin || (access == Access.Frontend && IsFrontendRoute(path)))
            {
                await next(http);
                return;
            }

            if (access == Access.Frontend)
            {
                await Problem(http, StatusCodes.Status403Forbidden, ProblemTypes.Forbidden, "Forbidden", "This route needs the admin API key (SessionStore:ApiKey), not a frontend key.");
                return;
            }

            Log.ApiKeyRefused(logger, caller, http.Request.Method, path, presented is null ? "missing" : "wrong");
            if (limiter.Failed(caller))
            {
                Log.ApiKeyCallerLimited(logger, caller, FailedApiKeyLimiter.FailuresPerMinute);
            }

            // RFC 9110 asks a 401 to name how to authenticate: this API's key, in its header.
            http.Response.Headers.WWWAuthenticate = $"ApiKey header=\"{Header}\"";
            await Problem(http, StatusCodes.Status401Unauthorized, ProblemTypes.Unauthorized, "Unauthorized", $"A valid {Header} header is required.");
        });
    }

    /// <summary>What a frontend does at sign-in and with a user's token; everything by user id is administrative.</summary>
    private static bool IsFrontendRoute(PathString path) =>
        (path.StartsWithSegments("/sessions", out var rest) && !rest.HasValue)
        || path.StartsWithSegments("/sessions/current");

    private static byte[][] Digests(string? keys) =>
        SiloHostOptions.Keys(keys).Select(key => SHA256.HashData(Encoding.UTF8.GetBytes(key))).ToArray();

    // Every configured key is compared, whichever matches, so the time taken says nothing about which one did.
    private static Access Match(string presented, byte[][] admin, byte[][] frontend)
    {
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(presented));
        var isAdmin = false;
        var isFrontend = false;
        foreach (var key in admin)
        {
            isAdmin |= CryptographicOperations.FixedTimeEquals(digest, key);
        }

        foreach (var key in frontend)
        {
            isFrontend |= CryptographicOperations.FixedTimeEquals(digest, key);
        }

        return isAdmin ? Access.Admin : isFrontend ? Access.Frontend : Access.None;
    }

    private static Task Problem(HttpContext http, int status, string type, string title, string detail)
    {
        http.Response.StatusCode = status;
        return Results.Problem(statusCode: status, type: type, title: title, detail: detail).ExecuteAsync(http);
    }

    private static partial class Log
    {
        [LoggerMessage(5202, LogLevel.Warning, "Refused {Method} {Path} from {Caller}: {Reason} API key.")]
        public static partial void ApiKeyRefused(ILogger logger, string caller, string method, string path, string reason);

        [LoggerMessage(5203, LogLevel.Warning, "{Caller} sent {Failures} requests without a valid API key within a minute; its requests get 429 until the minute ends.")]
        public static partial void ApiKeyCallerLimited(ILogger logger, string caller, int failures);
    }
}
