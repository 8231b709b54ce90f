using System.Diagnostics;

namespace SessionGrains;

/// <summary>
/// The client's activities (source <c>SessionGrains</c>): one per store operation, so a frontend's request
/// trace shows its session call; Orleans carries the context on to the grains. Tags never carry a token or a user id.
/// </summary>
internal static class SessionStoreActivities
{
    /// <summary>Name of the activity source, the same as the meter's.</summary>
    public const string SourceName = "SessionGrains";

    /// <summary>Tag with the loggable prefix of the session id (<see cref="SessionIds.ForLog"/>).</summary>
    public const string SessionTag = "sessiongrains.session";

    private static readonly ActivitySource Source = new(SourceName);

    /// <summary>Starts the activity of <paramref name="operation"/>, or null when nobody listens.</summary>
    public static Activity? Start(string operation, string? sessionId = null)
    {
        var activity = Source.StartActivity("SessionStore." + operation, ActivityKind.Client);
        if (activity is not null && sessionId is not null)
        {
            activity.SetTag(SessionTag, SessionIds.ForLog(sessionId));
        }

        return activity;
    }

    /// <summary>Runs <paramref name="call"/> inside the activity of <paramref name="operation"/>; without a listener, just runs it.</summary>
    public static Task<T> Traced<T>(string operation, string? sessionId, Func<Task<T>> call) =>
        Source.HasListeners() ? TracedAsync(operation, sessionId, call) : call();

    private static async Task<T> TracedAsync<T>(string operation, string? sessionId, Func<Task<T>> call)
    {
        using var activity = Start(operation, sessionId);
        return await call().ConfigureAwait(false);
    }

    /// <summary>
    /// Marks the store's current activity failed with the exception's type only (messages may one day carry caller
    /// input). Called from the one place every grain call passes (<see cref="SessionStoreRetry"/>), so every operation
    /// records its failures the same way.
    /// </summary>
    public static void Failed(Exception exception)
    {
        if (Activity.Current is { } activity && ReferenceEquals(activity.Source, Source))
        {
            activity.SetStatus(ActivityStatusCode.Error, exception.GetType().Name);
        }
    }
}
