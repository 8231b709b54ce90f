using Microsoft.Extensions.Options;

namespace SessionGrains;

/// <summary>
/// How the session and user-index grains behave. Bound from the <c>SessionStore</c> configuration section
/// (environment: <c>SessionStore__DefaultIdleTimeout=00:30:00</c>, ...); where state is stored is
/// <see cref="SessionClusterOptions.Redis"/>.
/// </summary>
public sealed class SessionGrainsOptions
{
    /// <summary>Sliding idle timeout of a session created without one. Default 30 minutes.</summary>
    public TimeSpan DefaultIdleTimeout { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>Absolute lifetime of a session created without one. Default 12 hours.</summary>
    public TimeSpan DefaultAbsoluteTimeout { get; set; } = TimeSpan.FromHours(12);

    /// <summary>Longest absolute lifetime a caller may ask for. Default 400 days.</summary>
    public TimeSpan MaxAbsoluteTimeout { get; set; } = TimeSpan.FromDays(400);

    /// <summary>Live sessions one user may have. Default 100.</summary>
    public int MaxSessionsPerUser { get; set; } = 100;

    /// <summary>What a create does when the user is at the limit. Default <see cref="SessionLimitPolicy.EvictOldest"/>.</summary>
    public SessionLimitPolicy LimitPolicy { get; set; } = SessionLimitPolicy.EvictOldest;

    /// <summary>Largest role + metadata + payload + client details (as created from and last seen from) of one session, in bytes (UTF-8 for strings). Default 64 KiB.</summary>
    public int MaxSessionDataBytes { get; set; } = 64 * 1024;

    /// <summary>
    /// The sliding last-access time is written to storage only when this fraction of the idle timeout has
    /// passed since the last write. A silo crash can therefore shorten a session's idle window by at most
    /// this fraction. Default 0.1.
    /// </summary>
    public double LastAccessWriteFraction { get; set; } = 0.1;

    /// <summary>Longest grace window a rotation may keep the old token working. Default 5 minutes.</summary>
    public TimeSpan MaxRotationGracePeriod { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Session grains, user indexes and expiry buckets unused this long are deactivated, so silo memory follows
    /// the active set, not the stored one. Default 2 minutes.
    /// </summary>
    public TimeSpan IdleSessionDeactivation { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Stored session keys expire this long after the session's absolute expiry (the storage backstop), so
    /// no session data outlives its lifetime even with no silo running. Default 5 minutes.
    /// </summary>
    public TimeSpan StorageExpiryMargin { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How records are laid out in Redis. <see cref="RedisStorageFormat.Legacy"/> only while a rolling upgrade
    /// from a build that wrote it runs (docs/storage.md). Default <see cref="RedisStorageFormat.Compact"/>.
    /// </summary>
    public RedisStorageFormat RedisStorageFormat { get; set; } = RedisStorageFormat.Compact;

    /// <summary>
    /// Width of an expiry bucket: sessions are checked for cleanup at the first bucket boundary after their
    /// expiry, one reminder per bucket (16 shards each). Wider buckets mean fewer reminders and later
    /// cleanup; expiry itself is exact either way. Must be the same on every silo. Default 1 minute.
    /// </summary>
    public TimeSpan ExpiryBucketWidth { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How long a frontend's near cache may answer a session's validations from memory after the session grain
    /// answered one (a lease; renewed while the session is in use). The longest a change waits for a frontend that
    /// does not answer its recall (frozen, cut off), and the longest a silo crash delays the first change of a
    /// session it held. Zero lends no leases (every validation reaches its grain). At most half of
    /// <see cref="SessionClusterOptions.ResponseTimeout"/>, so a change that waits a lease out is not reported as
    /// timed out. Must be the same on every silo. Default 5 seconds.
    /// </summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Client (IP, User-Agent) and activity signals and what they do (<c>SessionStore:Signals:...</c>).</summary>
    public SessionSignalOptions Signals { get; set; } = new();

    /// <summary>The session event log: whether it is written and how much of it is kept (<c>SessionStore:Events:...</c>).</summary>
    public SessionEventOptions Events { get; set; } = new();

    /// <summary>The clock the grains read. Replace only in tests; not a configuration setting.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}

/// <summary>Fails start-up with a message that names the wrong setting.</summary>
internal sealed class SessionGrainsOptionsValidator(IOptions<SessionClusterOptions> cluster) : IValidateOptions<SessionGrainsOptions>
{
    public ValidateOptionsResult Validate(string? name, SessionGrainsOptions options)
    {
        var failures = new List<string>();
        const string S = SessionClusterOptions.SectionName;
        if (options.DefaultIdleTimeout <= TimeSpan.Zero)
        {
            failures.Add($"{S}:DefaultIdleTimeout must be positive (was {options.DefaultIdleTimeout}).");
        }

        if (options.DefaultAbsoluteTimeout <= TimeSpan.Zero || options.DefaultAbsoluteTimeout > options.MaxAbsoluteTimeout)
        {
            failures.Add($"{S}:DefaultAbsoluteTimeout must be positive and at most {S}:MaxAbsoluteTimeout ({options.MaxAbsoluteTimeout}); was {options.DefaultAbsoluteTimeout}.");
        }

        if (options.MaxSessionsPerUser < 1)
        {
            failures.Add($"{S}:MaxSessionsPerUser must be at least 1 (was {options.MaxSessionsPerUser}).");
        }

        if (!Enum.IsDefined(options.LimitPolicy))
        {
            failures.Add($"{S}:LimitPolicy must be EvictOldest or RejectNew.");
        }

        if (options.MaxSessionDataBytes < 1024)
        {
            failures.Add($"{S}:MaxSessionDataBytes must be at least 1024 (was {options.MaxSessionDataBytes}).");
        }

        if (options.LastAccessWriteFraction is <= 0 or > 1)
        {
            failures.Add($"{S}:LastAccessWriteFraction must be in (0, 1] (was {options.LastAccessWriteFraction}).");
        }

        if (options.IdleSessionDeactivation < TimeSpan.FromSeconds(1))
        {
            failures.Add($"{S}:IdleSessionDeactivation must be at least one second.");
        }

        if (options.ExpiryBucketWidth < TimeSpan.FromSeconds(1) || options.ExpiryBucketWidth > TimeSpan.FromHours(1))
        {
            failures.Add($"{S}:ExpiryBucketWidth must be between one second and one hour (was {options.ExpiryBucketWidth}).");
        }

        if (options.StorageExpiryMargin < TimeSpan.Zero || options.MaxRotationGracePeriod < TimeSpan.Zero)
        {
            failures.Add($"{S}:StorageExpiryMargin and {S}:MaxRotationGracePeriod must not be negative.");
        }

        if (options.LeaseDuration < TimeSpan.Zero || options.LeaseDuration > TimeSpan.FromMinutes(1))
        {
            failures.Add($"{S}:LeaseDuration must be between zero (no leases) and one minute (was {options.LeaseDuration}).");
        }
        else if (ResponseTimeout() is { } timeout && options.LeaseDuration > timeout / 2)
        {
            failures.Add($"{S}:LeaseDuration ({options.LeaseDuration}) must be at most half of {S}:ResponseTimeout ({timeout}): a change may wait a lease out, and its caller must not give up first.");
        }

        failures.AddRange(options.Signals.Validate($"{S}:Signals"));
        if (options.Events.RetainedEvents is < 1_000 or > 100_000_000)
        {
            failures.Add($"{S}:Events:RetainedEvents must be between 1,000 and 100,000,000 (was {options.Events.RetainedEvents}).");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private TimeSpan? ResponseTimeout()
    {
        try
        {
            return cluster.Value.ResponseTimeout;
        }
        catch (OptionsValidationException)
        {
            // The cluster settings' own validation reports what is wrong with them.
            return null;
        }
    }
}
