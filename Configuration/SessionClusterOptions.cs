using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace SessionGrains;

/// <summary>
/// What every silo and frontend of one cluster must agree on. Bound from the <c>SessionStore</c> configuration
/// section (environment: <c>SessionStore__Redis=...</c>, <c>SessionStore__ClusterId=...</c>).
/// </summary>
public sealed class SessionClusterOptions
{
    /// <summary>The configuration section every SessionGrains setting lives in.</summary>
    public const string SectionName = "SessionStore";

    /// <summary>
    /// StackExchange.Redis configuration string (<c>host:6379,user=...,password=...,ssl=true</c>): clustering,
    /// grain storage and reminders. Null: the embedded default (localhost clustering, in-memory storage and
    /// reminders); a frontend then connects to a silo on this machine at <see cref="GatewayPort"/>. A secret: never logged.
    /// </summary>
    public string? Redis { get; set; }

    /// <summary>PEM file of the CA that signed the Redis server's TLS certificate, when the OS does not trust it.</summary>
    public string? RedisCaCertificate { get; set; }

    /// <summary>Orleans cluster id; the same on every silo and frontend. Default <c>sessiongrains</c>.</summary>
    public string ClusterId { get; set; } = "sessiongrains";

    /// <summary>Orleans service id; the same on every silo and frontend, and the prefix of every Redis key. Default <c>sessiongrains</c>.</summary>
    public string ServiceId { get; set; } = "sessiongrains";

    /// <summary>Port Orleans clients (frontends) connect to: the standalone silo listens on it, a frontend without <see cref="Redis"/> connects to it on this machine. Default 30000.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>
    /// How long a call waits for a silo's answer before it fails (and a frontend retries). Orleans' default is
    /// 30 seconds; a session store answers in milliseconds, so a shorter wait lets a call to a silo that just
    /// died move on sooner. Default 10 seconds.
    /// </summary>
    public TimeSpan ResponseTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>A new parsed copy of <see cref="Redis"/>, or null without it. Only after validation, which reports a bad string.</summary>
    internal ConfigurationOptions? ParseRedis() =>
        Redis is null ? null : RedisConfiguration.Parse(Redis, RedisConfiguration.RedisSetting, RedisCaCertificate);
}

/// <summary>Fails start-up with a message that names the wrong setting and never repeats the Redis string.</summary>
internal sealed class SessionClusterOptionsValidator : IValidateOptions<SessionClusterOptions>
{
    public ValidateOptionsResult Validate(string? name, SessionClusterOptions options)
    {
        const string S = SessionClusterOptions.SectionName;
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.ClusterId))
        {
            failures.Add($"{S}:ClusterId must not be empty.");
        }

        if (string.IsNullOrWhiteSpace(options.ServiceId))
        {
            failures.Add($"{S}:ServiceId must not be empty.");
        }

        if (options.GatewayPort is < 1 or > 65535)
        {
            failures.Add($"{S}:GatewayPort must be a port between 1 and 65535 (was {options.GatewayPort}).");
        }

        if (options.ResponseTimeout < TimeSpan.FromSeconds(1))
        {
            failures.Add($"{S}:ResponseTimeout must be at least one second.");
        }

        try
        {
            options.ParseRedis();
        }
        catch (OptionsValidationException exception)
        {
            // Parse names the setting and leaves the string out.
            failures.AddRange(exception.Failures);
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
