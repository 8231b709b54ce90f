using System.Buffers.Text;
using System.Diagnostics.CodeAnalysis;

namespace SessionGrains;

/// <summary>Rules for the identifiers the store accepts, checked before any grain is called.</summary>
public static class SessionIds
{
    /// <summary>Longest user id accepted, in characters.</summary>
    public const int MaxUserIdLength = 256;

    /// <summary>
    /// Throws <see cref="ArgumentException"/> unless <paramref name="userId"/> is a usable user id:
    /// not empty or whitespace, at most <see cref="MaxUserIdLength"/> characters, no control characters.
    /// </summary>
    public static void ValidateUserId(string? userId, string paramName = "userId")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(userId, paramName);
        if (userId.Length > MaxUserIdLength)
        {
            throw new ArgumentException($"The user id is longer than {MaxUserIdLength} characters.", paramName);
        }

        foreach (var c in userId)
        {
            if (char.IsControl(c))
            {
                throw new ArgumentException("The user id contains control characters.", paramName);
            }
        }
    }

    /// <summary>True when <paramref name="value"/> has the shape of a public session id (43 base64url characters).</summary>
    public static bool IsWellFormedSessionId([NotNullWhen(true)] string? value) =>
        value is { Length: 43 } && Base64Url.IsValid(value, out var decodedLength) && decodedLength == 32;

    /// <summary>
    /// How log lines name a user: <c>user:</c> and the first 12 hex digits of the SHA-256 of the user id, so an
    /// operator can find the user (<c>printf %s "$USER_ID" | sha256sum | cut -c1-12</c>) and a log holds no e-mail address.
    /// </summary>
    public static string UserForLog(string userId) =>
        "user:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(userId)))[..12];

    /// <summary>The first 8 characters of a public session id: how log lines name a session.</summary>
    public static string ForLog(string? sessionId) =>
        sessionId is { Length: > 8 } ? sessionId[..8] : sessionId ?? "-";
}
