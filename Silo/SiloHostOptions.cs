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

    /// <summary>
    /// Keys for every HTTP route but <c>/health</c>, sent in <c>X-Api-Key</c>; comma-separated to accept several while
    /// rotating. Each at least 16 printable ASCII characters, no spaces around it. Required with Redis unless
    /// <see cref="AllowOpenApi"/>. Secrets.
    /// </summary>
    public string? ApiKey { get; set; }

    /// <summary>
    /// Keys (comma-separated) for only what a frontend does at sign-in and with a user's token: <c>POST /sessions</c> and
    /// <c>/sessions/current</c>. The routes by user id and <c>/stats</c> need an <see cref="ApiKey"/>. Secrets.
    /// </summary>
    public string? FrontendApiKey { get; set; }

    /// <summary>With Redis and no key, start anyway with the HTTP API open to whoever reaches it. Default false.</summary>
    public bool AllowOpenApi { get; set; }

    /// <summary>Largest HTTP request body accepted, in bytes. Default 256 KiB.</summary>
    public long MaxRequestBodyBytes { get; set; } = 256 * 1024;

    /// <summary>Largest total size of an HTTP request's headers, in bytes. Default 16 KiB.</summary>
    public int MaxRequestHeadersBytes { get; set; } = 16 * 1024;

    /// <summary>
    /// Failed token checks one caller may make per minute before its tokens that name no live session get 429.
    /// Only tokens that pass their MAC and then find no session count; a valid token is always served. The caller
    /// is the end user in <c>X-Client-IP</c> when a key (<see cref="ApiKey"/> or <see cref="FrontendApiKey"/>) is set, otherwise the calling address.
    /// Default 100; 0 turns the limit off (e.g. for a backend that calls for many users from one address).
    /// </summary>
    public int FailedTokenChecksPerMinute { get; set; } = 100;

    /// <summary>
    /// Serve the Orleans dashboard at <c>/dashboard</c>: behind <see cref="ApiKey"/> when one is set, otherwise to loopback
    /// callers only. Default false.
    /// </summary>
    public bool Dashboard { get; set; }

    /// <summary>
    /// Serve an interactive API reference (Scalar) of the OpenAPI document at <c>/scalar</c>, open like the document
    /// itself (trying a route from it needs the API key). Default false.
    /// </summary>
    public bool ApiReference { get; set; }

    /// <summary>Whether any key is configured, so the API is closed to callers without one.</summary>
    internal bool RequiresApiKey => ApiKey is not null || FrontendApiKey is not null;

    /// <summary>The keys of a comma-separated setting (none when unset).</summary>
    internal static IReadOnlyList<string> Keys(string? setting) => setting is null ? [] : setting.Split(',');
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

        ValidateKeys(failures, $"{S}:ApiKey", options.ApiKey);
        ValidateKeys(failures, $"{S}:FrontendApiKey", options.FrontendApiKey);
        if (SiloHostOptions.Keys(options.ApiKey).Intersect(SiloHostOptions.Keys(options.FrontendApiKey), StringComparer.Ordinal).Any())
        {
            failures.Add($"{S}:FrontendApiKey must not repeat a key of {S}:ApiKey (that key would open every route).");
        }

        if (!options.RequiresApiKey && !options.AllowOpenApi && SharedStoreSetting() is { } store)
        {
            failures.Add($"With {store} set, {S}:ApiKey is required (a random secret of at least 16 characters, sent in "
                + $"{ApiKeyMiddleware.Header}), or set {S}:AllowOpenApi=true to serve the HTTP API to whoever reaches it.");
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

    // A key with spaces around it could never match (Kestrel trims header values), nor one a header cannot carry.
    private static void ValidateKeys(List<string> failures, string setting, string? value)
    {
        var keys = SiloHostOptions.Keys(value);
        if (keys.Any(key => key.Length < 16))
        {
            failures.Add($"{setting} must be one or more comma-separated keys of at least 16 characters each.");
        }

        if (keys.Any(key => key.Trim() != key || key.Any(c => c is < ' ' or > '~')))
        {
            failures.Add($"{setting}: a key has spaces around it or a character an HTTP header cannot carry; use printable ASCII, commas without spaces between keys.");
        }
    }

    private string? SharedStoreSetting()
    {
        try
        {
            return cluster.Value.HasSharedStore ? cluster.Value.SharedStoreSetting : null;
        }
        catch (OptionsValidationException)
        {
            return null;
        }
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
