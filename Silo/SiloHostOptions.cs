using System.Net;
using Microsoft.Extensions.Options;
using SessionGrains;

namespace SessionGrains.Silo;

/// <summary>
/// How the standalone silo listens and serves HTTP. Bound from the <c>SessionStore</c> section (environment
/// variables <c>SessionStore__SiloPort</c>, ...); what it shares with the rest of the cluster is
/// <see cref="SessionClusterOptions"/>. The HTTP address comes from the usual <c>ASPNETCORE_URLS</c> / <c>--urls</c>.
/// </summary>
public sealed class SiloHostOptions
{
    /// <summary>Silo-to-silo port. Default 11111.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>IP address other silos and clients use to reach this silo (with Redis clustering). Default: this host's address.</summary>
    public string? AdvertisedAddress { get; set; }

    /// <summary>
    /// Whether the silo and gateway ports listen on every interface instead of <see cref="AdvertisedAddress"/> alone
    /// (with Redis clustering). For NAT, where the advertised address is not one of this host's own. Default false.
    /// </summary>
    public bool ListenOnAnyAddress { get; set; }

    /// <summary>When set, every HTTP route but <c>/health</c> requires it in <c>X-Api-Key</c>; at least 16 characters. A secret.</summary>
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

/// <summary>Fails start-up with a message that names the wrong setting and never repeats the API key.</summary>
internal sealed class SiloHostOptionsValidator(IOptions<SessionClusterOptions> cluster) : IValidateOptions<SiloHostOptions>
{
    public ValidateOptionsResult Validate(string? name, SiloHostOptions options)
    {
        const string S = SessionClusterOptions.SectionName;
        var failures = new List<string>();
        if (options.SiloPort is < 1 or > 65535 || options.SiloPort == GatewayPort())
        {
            failures.Add($"{S}:SiloPort must be a port between 1 and 65535, other than {S}:GatewayPort (was {options.SiloPort}).");
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

        if (options.FailedTokenChecksPerMinute < 0)
        {
            failures.Add($"{S}:FailedTokenChecksPerMinute must be 0 (off) or more (was {options.FailedTokenChecksPerMinute}).");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private int? GatewayPort()
    {
        try
        {
            return cluster.Value.GatewayPort;
        }
        catch (OptionsValidationException)
        {
            // The cluster settings' own validation reports them.
            return null;
        }
    }
}
