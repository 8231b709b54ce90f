using System.Net;
using Microsoft.Extensions.Options;
using SessionGrains;

namespace SessionGrains.Silo;

/// <summary>
/// How the standalone silo joins its cluster and serves HTTP. Bound from the <c>SessionStore</c> section
/// (environment variables <c>SessionStore__Redis</c>, <c>SessionStore__SiloPort</c>, ...). The HTTP address
/// comes from the usual <c>ASPNETCORE_URLS</c> / <c>--urls</c>.
/// </summary>
public sealed class SiloHostOptions
{
    /// <summary>Redis configuration string for clustering, storage and reminders; null runs the embedded default. A secret.</summary>
    public string? Redis { get; set; }

    /// <summary>PEM file of the CA that signed the Redis server's TLS certificate, when the OS does not trust it.</summary>
    public string? RedisCaCertificate { get; set; }

    /// <summary>Orleans cluster id. Default <c>sessiongrains</c>.</summary>
    public string ClusterId { get; set; } = "sessiongrains";

    /// <summary>Orleans service id; also the prefix of every Redis key. Default <c>sessiongrains</c>.</summary>
    public string ServiceId { get; set; } = "sessiongrains";

    /// <summary>Silo-to-silo port. Default 11111.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Port Orleans clients (frontends) connect to. Default 30000.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>IP address other silos and clients use to reach this silo (with Redis clustering). Default: this host's address.</summary>
    public string? AdvertisedAddress { get; set; }

    /// <summary>Keys that sign session tokens (<c>id:secret,...</c>, newest first); required with <see cref="Redis"/>. A secret.</summary>
    public string? TokenKeys { get; set; }

    /// <summary>How long a silo-to-silo call waits for an answer (Orleans' default is 30 s). Default 10 seconds.</summary>
    public TimeSpan ResponseTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>When set, every HTTP route but <c>/health</c> requires it in <c>X-Api-Key</c>. A secret.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Largest HTTP request body accepted, in bytes. Default 256 KiB.</summary>
    public long MaxRequestBodyBytes { get; set; } = 256 * 1024;

    /// <summary>Largest total size of an HTTP request's headers, in bytes. Default 16 KiB.</summary>
    public int MaxRequestHeadersBytes { get; set; } = 16 * 1024;

    /// <summary>
    /// Failed token checks one caller may make per minute before its tokens that name no live session get 429.
    /// Only tokens that pass their MAC and then find no session count; a valid token is always served. The caller
    /// is the end user in <c>X-Client-IP</c> when <see cref="ApiKey"/> is set, otherwise the calling address.
    /// Default 100; 0 turns the limit off (e.g. for a backend that calls for many users from one address).
    /// </summary>
    public int FailedTokenChecksPerMinute { get; set; } = 100;
}

internal sealed class SiloHostOptionsValidator : IValidateOptions<SiloHostOptions>
{
    public ValidateOptionsResult Validate(string? name, SiloHostOptions options)
    {
        const string S = SessionGrainsOptions.SectionName;
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.ClusterId))
        {
            failures.Add($"{S}:ClusterId must not be empty.");
        }

        if (string.IsNullOrWhiteSpace(options.ServiceId))
        {
            failures.Add($"{S}:ServiceId must not be empty.");
        }

        if (options.SiloPort is < 1 or > 65535 || options.GatewayPort is < 1 or > 65535 || options.SiloPort == options.GatewayPort)
        {
            failures.Add($"{S}:SiloPort and {S}:GatewayPort must be distinct ports between 1 and 65535 (were {options.SiloPort} and {options.GatewayPort}).");
        }

        if (options.AdvertisedAddress is { } address && !IPAddress.TryParse(address, out _))
        {
            failures.Add($"{S}:AdvertisedAddress must be an IP address (was '{address}').");
        }

        if (options.ApiKey is { Length: < 16 })
        {
            failures.Add($"{S}:ApiKey must be at least 16 characters long.");
        }

        if (options.MaxRequestBodyBytes < 1024 || options.MaxRequestHeadersBytes < 4096)
        {
            failures.Add($"{S}:MaxRequestBodyBytes must be at least 1024 and {S}:MaxRequestHeadersBytes at least 4096.");
        }

        if (options.ResponseTimeout < TimeSpan.FromSeconds(1))
        {
            failures.Add($"{S}:ResponseTimeout must be at least one second.");
        }

        if (options.FailedTokenChecksPerMinute < 0)
        {
            failures.Add($"{S}:FailedTokenChecksPerMinute must be 0 (off) or more (was {options.FailedTokenChecksPerMinute}).");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
