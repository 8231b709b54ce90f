using Microsoft.AspNetCore.Http.HttpResults;
namespace SessionGrains.Silo;

/// <summary>
/// Limits what costs the cluster and cannot succeed, never the valid tokens of the users next to it:
/// <list type="bullet">
/// <item>A token that fails its MAC is answered 404 by the store without any grain call; it is not counted and never refused.</item>
/// <item>A token that passes its MAC but names no live session (404 after a grain call) counts as a failure of its caller:
/// the end user named in <c>X-Client-IP</c> when the API key is set (only an authenticated backend can name one),
/// otherwise the calling address.</item>
/// <item>A user route that finds nothing (an empty list, a revoke of no session, a sign-out-everywhere that ended none)
/// counts as a failure of its caller in the same budget: it cost a user index activation and a storage read. Over the
/// budget, such an answer is 429 instead; a user with sessions is always served.</item>
/// <item>Once a caller has more than <see cref="SiloHostOptions.FailedTokenChecksPerMinute"/> failures in its minute, its
/// requests with a token already found dead get 429 with <c>Retry-After</c> without a grain call, and a token found dead
/// by the grain is answered 429 instead of 404. Every other token still reaches its grain: a live session is always served.</item>
/// </list>
/// Both tables are bounded, so no stream of junk grows the silo's memory. A limit of 0 turns the limiter off.
/// </summary>
internal sealed class FailedTokenLimiter(SessionTokenCodec tokens, int failuresPerMinute, bool trustClientIp, TimeProvider time)
{
    /// <summary>Most callers (and dead sessions) remembered at once; past it, new callers share one budget.</summary>
    internal const int MaxEntries = 50_000;

    private readonly Lock _lock = new();
    private readonly CallerFailureWindows _callers = new(MaxEntries);
    private readonly Dictionary<string, DateTimeOffset> _deadUntil = new(StringComparer.Ordinal);
    private DateTimeOffset _lastDeadSweep;

    /// <summary>Callers and dead sessions remembered now (for the tests of the memory bound).</summary>
    internal int Entries
    {
        get
        {
            lock (_lock)
            {
                return _callers.Count + _deadUntil.Count;
            }
        }
    }

    /// <summary>An endpoint filter for the token routes.</summary>
    public async ValueTask<object?> FilterAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        if (failuresPerMinute == 0
            || http.Request.Headers[SessionApi.TokenHeader] is not [{ } value]
            || !tokens.TryParse(value, out var token))
        {
            // Off, or the endpoint answers it without a grain call (400 for a missing token, 404 for a failed MAC).
            return await next(context);
        }

        var caller = Caller(http, trustClientIp);
        if (RefuseWithoutCall(caller, token.SessionId) is { } wait)
        {
            return TooManyFailures(http, wait);
        }

        var result = await next(context);
        if ((result is INestedHttpResult nested ? nested.Result : result) is IStatusCodeHttpResult { StatusCode: StatusCodes.Status404NotFound }
            && Failed(caller, token.SessionId, remember: HttpMethods.IsGet(http.Request.Method)) is { } retryAfter)
        {
            return TooManyFailures(http, retryAfter);
        }

        return result;
    }

    /// <summary>
    /// Who a failure is counted against: the end user named by an authenticated backend, else the calling address.
    /// One place, so the address rules can be shared with the rest of the API.
    /// </summary>
    internal static string Caller(HttpContext http, bool trustClientIp) =>
        trustClientIp && http.Request.Headers[SessionApi.ClientIpHeader] is [{ Length: > 0 and <= 64 } endUser]
            && System.Net.IPAddress.TryParse(endUser, out var address)
            ? "user:" + address // canonical, so one address cannot be spelled many ways to get many budgets
            : "addr:" + (http.Connection.RemoteIpAddress?.ToString() ?? "unknown");

    /// <summary>
    /// Counts a user route that found nothing against its caller; the 429 to answer instead when that went over the
    /// budget, else null. A user route never waits on the budget before its grain call, so a user with sessions is always served.
    /// </summary>
    public ProblemHttpResult? FoundNothing(HttpContext http) =>
        failuresPerMinute > 0 && Failed(Caller(http, trustClientIp), sessionId: null, remember: false) is { } retryAfter
            ? TooManyFailures(http, retryAfter)
            : null;

    /// <summary>The wait, when the caller is over its budget and this session was already found dead.</summary>
    private TimeSpan? RefuseWithoutCall(string caller, string sessionId)
    {
        var now = time.GetUtcNow();
        lock (_lock)
        {
            return _deadUntil.TryGetValue(sessionId, out var until) && until > now
                && _callers.Current(caller, now) is { } window && window.Failures > failuresPerMinute
                    ? window.Ends - now
                    : null;
        }
    }

    /// <summary>Counts a failure; the wait when it went over the budget. A dead session is remembered only from a validation.</summary>
    private TimeSpan? Failed(string caller, string? sessionId, bool remember)
    {
        var now = time.GetUtcNow();
        lock (_lock)
        {
            var window = _callers.Add(caller, now);

            // A validation that found nothing (not even a rotation's grace) means the session id never comes back.
            if (remember && sessionId is not null)
            {
                SweepDeadWhenFull(now);
                if (_deadUntil.ContainsKey(sessionId) || _deadUntil.Count < MaxEntries)
                {
                    _deadUntil[sessionId] = now + CallerFailureWindows.Window;
                }
            }

            return window.Failures > failuresPerMinute ? window.Ends - now : null;
        }
    }

    /// <summary>Drops dead-session entries that ended once the table is full, at most once a second.</summary>
    private void SweepDeadWhenFull(DateTimeOffset now)
    {
        if (_deadUntil.Count < MaxEntries || now - _lastDeadSweep < TimeSpan.FromSeconds(1))
        {
            return;
        }

        _lastDeadSweep = now;
        foreach (var (sessionId, until) in _deadUntil)
        {
            if (until <= now)
            {
                _deadUntil.Remove(sessionId);
            }
        }
    }

    private static ProblemHttpResult TooManyFailures(HttpContext http, TimeSpan retryAfter)
    {
        RetryAfterHeader.Set(http.Response, retryAfter);
        return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, type: ProblemTypes.TooManyFailures, title: "Too many requests",
            detail: "Too many failed token checks or user queries that found nothing from this caller; try again later.");
    }
}
