namespace SessionGrains;

/// <summary>The per-user session limit refused a new session (policy <see cref="SessionLimitPolicy.RejectNew"/>).</summary>
public sealed class SessionLimitExceededException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SessionLimitExceededException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public SessionLimitExceededException() { }

    /// <summary>Creates the exception.</summary>
    public SessionLimitExceededException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>An update named an expected version that is no longer the session's version.</summary>
public sealed class SessionVersionConflictException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SessionVersionConflictException(long expectedVersion, long actualVersion)
        : base($"The session is at version {actualVersion}, not the expected version {expectedVersion}.")
    {
        ExpectedVersion = expectedVersion;
        ActualVersion = actualVersion;
    }

    /// <summary>Creates the exception.</summary>
    public SessionVersionConflictException() { }

    /// <summary>Creates the exception.</summary>
    public SessionVersionConflictException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public SessionVersionConflictException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>The version the caller expected.</summary>
    public long ExpectedVersion { get; }

    /// <summary>The session's current version.</summary>
    public long ActualVersion { get; }
}

/// <summary>A request was refused for a while by an activity policy (request burst, or sessions created too fast).</summary>
[GenerateSerializer, Alias("sessiongrains.session-throttled-exception")]
public sealed class SessionThrottledException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SessionThrottledException(string message, TimeSpan retryAfter) : base(message) => RetryAfter = retryAfter;

    /// <summary>Creates the exception.</summary>
    public SessionThrottledException() { }

    /// <summary>Creates the exception.</summary>
    public SessionThrottledException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public SessionThrottledException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>How long the caller should wait before trying again.</summary>
    [Id(0)]
    public TimeSpan RetryAfter { get; private set; }
}

/// <summary>
/// The store cannot answer now: its storage (Redis) is unreachable, or no silo could take the request
/// after the client's retries. Nothing was changed by the failed call unless it says otherwise; try again
/// after <see cref="RetryAfter"/>. The HTTP API answers 503 with <c>Retry-After</c>.
/// </summary>
[GenerateSerializer, Alias("sessiongrains.session-store-unavailable-exception")]
public sealed class SessionStoreUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SessionStoreUnavailableException(string message, TimeSpan retryAfter) : base(message) => RetryAfter = retryAfter;

    /// <summary>Creates the exception.</summary>
    public SessionStoreUnavailableException(string message, TimeSpan retryAfter, Exception innerException)
        : base(message, innerException) => RetryAfter = retryAfter;

    /// <summary>Creates the exception.</summary>
    public SessionStoreUnavailableException() { }

    /// <summary>Creates the exception.</summary>
    public SessionStoreUnavailableException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public SessionStoreUnavailableException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>A suggestion of how long to wait before trying again.</summary>
    [Id(0)]
    public TimeSpan RetryAfter { get; private set; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// A subscription resumed after a position the event log no longer reaches back to: events after it were trimmed (the
/// log keeps the newest <c>SessionStore:Events:RetainedEvents</c>). Rebuild what you keep from the store
/// (<c>ListByUserAsync</c>), then subscribe from now.
/// </summary>
public sealed class SessionEventsTrimmedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SessionEventsTrimmedException(string message, string position) : base(message) => Position = position;

    /// <summary>Creates the exception.</summary>
    public SessionEventsTrimmedException() { }

    /// <summary>Creates the exception.</summary>
    public SessionEventsTrimmedException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public SessionEventsTrimmedException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>The position the subscription asked to read after.</summary>
    public string Position { get; } = "";
}
