using System.Text.Json;

namespace SessionGrains.Silo;

/// <summary>
/// The <c>type</c> of every problem document the API answers, one per error a program may need to tell apart (two
/// 409s, two 429s, a session not found against a route not found). Stable: clients switch on them
/// (docs/http-api.md lists them).
/// </summary>
internal static class ProblemTypes
{
    private const string Prefix = "urn:sessiongrains:problem:";

    public const string InvalidRequest = Prefix + "invalid-request";
    public const string BodyTooLarge = Prefix + "body-too-large";
    public const string Unauthorized = Prefix + "unauthorized";
    public const string Forbidden = Prefix + "forbidden";
    public const string SessionNotFound = Prefix + "session-not-found";
    public const string NoSuchRoute = Prefix + "no-such-route";
    public const string SessionLimit = Prefix + "session-limit";
    public const string VersionConflict = Prefix + "version-conflict";
    public const string SessionThrottled = Prefix + "session-throttled";
    public const string TooManyFailures = Prefix + "too-many-failures";
    public const string Unavailable = Prefix + "unavailable";
    public const string EventsTrimmed = Prefix + "events-trimmed";
    public const string Internal = Prefix + "internal";

    /// <summary>Gives the problems ASP.NET Core writes itself their stable type (see <see cref="NameRouteNotFound"/> and <see cref="NameValidationProblem"/>).</summary>
    public static void Customize(ProblemDetailsContext context)
    {
        NameRouteNotFound(context);
        NameValidationProblem(context);
    }

    /// <summary>
    /// A 404 that no endpoint answered (the status-code pages' problem) says so, so a wrong base path does not read as
    /// "session not found" for every user.
    /// </summary>
    private static void NameRouteNotFound(ProblemDetailsContext context)
    {
        if (context.ProblemDetails.Status == StatusCodes.Status404NotFound && context.HttpContext.GetEndpoint() is null)
        {
            context.ProblemDetails.Type = NoSuchRoute;
            context.ProblemDetails.Title = "No such route";
            context.ProblemDetails.Detail = "No route answers this method and path: check the base path and the method.";
        }
    }

    /// <summary>
    /// A request body that failed validation is an invalid request like any other, and its errors are keyed by the JSON
    /// names the caller sent (<c>userId</c>), not the C# property names (ASP.NET Core's validation does not follow the
    /// JSON naming policy yet: dotnet/aspnetcore#61764).
    /// </summary>
    private static void NameValidationProblem(ProblemDetailsContext context)
    {
        if (context.ProblemDetails is not HttpValidationProblemDetails { Status: StatusCodes.Status400BadRequest } validation
            || validation.Type is not (null or "https://tools.ietf.org/html/rfc9110#section-15.5.1"))
        {
            return;
        }

        validation.Type = InvalidRequest;
        validation.Title = "Invalid request";
        var errors = validation.Errors.ToList();
        validation.Errors.Clear();
        foreach (var (field, messages) in errors)
        {
            var name = JsonNamingPolicy.CamelCase.ConvertName(field);
            validation.Errors[name] = [.. messages.Select(m => m.Replace(field, name, StringComparison.Ordinal))];
        }

        validation.Detail = string.Join(" ", validation.Errors.Values.SelectMany(m => m));
    }
}
