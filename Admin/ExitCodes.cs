namespace SessionGrains.Admin;

/// <summary>What the tool's exit status means, so scripts can tell a typo from an outage.</summary>
public static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>The cluster answered with an error of its own (5xx, unhealthy, refused for too many failures).</summary>
    public const int Failed = 1;

    public const int BadArgument = 2;

    public const int Unreachable = 3;

    /// <summary>No API key, a wrong one, or a frontend key on an admin route.</summary>
    public const int Unauthorized = 4;

    public const int NotFound = 5;
}

/// <summary>A failure the tool reports in one line and turns into its exit code.</summary>
public sealed class AdminCommandException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;

    /// <summary>When the cluster refused for too many failures and said when to try again (429 with Retry-After).</summary>
    public TimeSpan? RetryAfter { get; init; }
}
