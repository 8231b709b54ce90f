namespace SessionGrains;

/// <summary>How a frontend reaches the silo cluster. Bound from the <c>SessionStore</c> configuration section.</summary>
public sealed class SessionGrainsClientOptions
{
    /// <summary>
    /// StackExchange.Redis configuration string of the cluster's membership table. Null: connect to a silo
    /// on this machine (localhost clustering, <see cref="GatewayPort"/>). A secret: never logged.
    /// </summary>
    public string? Redis { get; set; }

    /// <summary>PEM file of the CA that signed the Redis server's TLS certificate, when the OS does not trust it.</summary>
    public string? RedisCaCertificate { get; set; }

    /// <summary>Orleans cluster id; must match the silos'. Default <c>sessiongrains</c>.</summary>
    public string ClusterId { get; set; } = "sessiongrains";

    /// <summary>Orleans service id; must match the silos'. Default <c>sessiongrains</c>.</summary>
    public string ServiceId { get; set; } = "sessiongrains";

    /// <summary>Keys that sign session tokens (see <see cref="SessionStoreOptions.TokenKeys"/>); required with <see cref="Redis"/>. A secret.</summary>
    public string? TokenKeys { get; set; }

    /// <summary>
    /// How long a call waits for a silo's answer before it fails (and is retried). Orleans' default is 30
    /// seconds; a session store answers in milliseconds, so a shorter wait lets a call to a silo that just
    /// died move on sooner. Default 10 seconds.
    /// </summary>
    public TimeSpan ResponseTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Send concurrent validations in batches: see <see cref="SessionStoreOptions.BatchValidations"/>. Default null (automatic).</summary>
    public bool? BatchValidations { get; set; }

    /// <summary>Gateway port of the local silo, used without <see cref="Redis"/>. Default 30000.</summary>
    public int GatewayPort { get; set; } = 30000;
}
