using System.Security.Cryptography;
using System.Text;

namespace SessionGrains.Silo;

/// <summary>
/// When <c>SessionStore:ApiKey</c> is set, every route but <c>/health</c> needs it in <c>X-Api-Key</c>.
/// Keys are compared as SHA-256 digests with <see cref="CryptographicOperations.FixedTimeEquals"/>, so
/// neither the content nor the length of the key leaks through timing.
/// </summary>
internal static class ApiKeyMiddleware
{
    public const string Header = "X-Api-Key";

    public static IApplicationBuilder UseApiKey(this IApplicationBuilder app, string? apiKey)
    {
        if (apiKey is null)
        {
            return app;
        }

        var expected = SHA256.HashData(Encoding.UTF8.GetBytes(apiKey));
        return app.Use(async (http, next) =>
        {
            if (http.Request.Path.StartsWithSegments("/health") || Matches(http.Request.Headers[Header].ToString(), expected))
            {
                await next(http);
                return;
            }

            http.Response.StatusCode = StatusCodes.Status401Unauthorized;
            await Results.Problem(statusCode: 401, title: "Unauthorized", detail: $"A valid {Header} header is required.").ExecuteAsync(http);
        });
    }

    private static bool Matches(string presented, byte[] expected) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), expected);
}
