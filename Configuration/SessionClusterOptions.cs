using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace SessionGrains;

/// <summary>
/// What every silo and frontend of one cluster must agree on, and how they reach each other (mutual TLS). Bound from the <c>SessionStore</c> configuration
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

    /// <summary>
    /// Npgsql connection string (<c>Host=db;Database=sessions;Username=...;Password=...</c>): clustering, grain storage
    /// and reminders in PostgreSQL, through Orleans' ADO.NET providers, instead of Redis. The schema comes from
    /// <c>dotnet run --project Silo -- migrate</c> (or <c>PostgresSchema.MigrateAsync</c>). Set this or <see cref="Redis"/>, not both.
    /// A secret: never logged.
    /// </summary>
    public string? Postgres { get; set; }

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

    /// <summary>
    /// This process's certificate for mutual TLS on the Orleans silo and gateway connections: a PKCS#12 file
    /// (<c>.pfx</c>) or a PEM certificate. Set on every silo and frontend: silos then accept only peers whose
    /// certificate <see cref="TlsCaCertificate"/> or <see cref="TlsAllowedThumbprints"/> trust, and frontends
    /// connect only to such silos. Null: plain TCP, so only a private network protects the Orleans ports.
    /// It needs both the Server and Client Authentication usages (or no Extended Key Usage): silos are both.
    /// </summary>
    public string? TlsCertificate { get; set; }

    /// <summary>PEM private key file of <see cref="TlsCertificate"/>, when it is a PEM certificate without its key.</summary>
    public string? TlsCertificateKey { get; set; }

    /// <summary>Password of the PKCS#12 file or of the encrypted PEM key. A secret: never logged.</summary>
    public string? TlsCertificatePassword { get; set; }

    /// <summary>
    /// PEM file of the CA that signs this cluster's certificates: a peer's certificate must chain to it (the
    /// operating system's trust store is not used). Use a CA for this cluster alone: every certificate it signs is a member.
    /// </summary>
    public string? TlsCaCertificate { get; set; }

    /// <summary>Comma-separated SHA-256 fingerprints (hex, colons allowed): when set, a peer's certificate must be one of them, and chain to <see cref="TlsCaCertificate"/> if that is set too.</summary>
    public string? TlsAllowedThumbprints { get; set; }

    /// <summary>
    /// Whether the cluster keeps its state in a store of its own (Redis or PostgreSQL), shared by silos that may be on
    /// other machines; false for the embedded default, whose state ends with the process.
    /// </summary>
    internal bool HasSharedStore => Redis is not null || Postgres is not null;

    /// <summary>The setting that names the shared store, for messages: <c>SessionStore:Redis</c> or <c>SessionStore:Postgres</c>.</summary>
    internal string SharedStoreSetting => Postgres is not null ? PostgresConfiguration.PostgresSetting : RedisConfiguration.RedisSetting;

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

        ValidateTls(options, failures);
        try
        {
            options.ParseRedis();
        }
        catch (OptionsValidationException exception)
        {
            // Parse names the setting and leaves the string out.
            failures.AddRange(exception.Failures);
        }

        ValidatePostgres(options, failures);

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>One store: PostgreSQL or Redis. A bad connection string is named by its setting, never quoted (it holds the password).</summary>
    private static void ValidatePostgres(SessionClusterOptions options, List<string> failures)
    {
        if (options.Postgres is null)
        {
            return;
        }

        if (options.Redis is not null)
        {
            failures.Add($"{PostgresConfiguration.PostgresSetting} and {RedisConfiguration.RedisSetting} are both set: a cluster keeps its state in one store. Remove one.");
        }

        if (PostgresConfiguration.Problem(options.Postgres) is { } problem)
        {
            failures.Add($"{PostgresConfiguration.PostgresSetting} is not a usable Npgsql connection string: {problem}");
        }
    }

    /// <summary>Reads the certificate files as TLS will; messages name the setting and the file, never the password.</summary>
    private static void ValidateTls(SessionClusterOptions options, List<string> failures)
    {
        if (string.IsNullOrWhiteSpace(options.TlsCertificate))
        {
            if (options.TlsCertificateKey is not null || options.TlsCertificatePassword is not null || options.TlsCaCertificate is not null || options.TlsAllowedThumbprints is not null)
            {
                // A CA without a certificate would leave the ports in plain text while the operator believes them protected.
                failures.Add($"{ClusterTls.CaSetting}, {ClusterTls.ThumbprintsSetting}, {ClusterTls.KeySetting} and {ClusterTls.PasswordSetting} need {ClusterTls.CertificateSetting}: without it the Orleans connections are not encrypted.");
            }

            return;
        }

        if (ClusterTls.ParseThumbprints(options.TlsAllowedThumbprints) is null)
        {
            failures.Add($"{ClusterTls.ThumbprintsSetting} must be comma-separated SHA-256 fingerprints of 64 hex digits.");
        }

        if (string.IsNullOrWhiteSpace(options.TlsCaCertificate) && string.IsNullOrWhiteSpace(options.TlsAllowedThumbprints))
        {
            failures.Add($"{ClusterTls.CertificateSetting} needs {ClusterTls.CaSetting} or {ClusterTls.ThumbprintsSetting}: the peers to accept are named, never every certificate a public CA signed.");
        }

        if (!File.Exists(options.TlsCertificate))
        {
            failures.Add($"{ClusterTls.CertificateSetting}: the file '{options.TlsCertificate}' does not exist.");
        }
        else
        {
            try
            {
                using var certificate = ClusterTls.LoadCertificate(options.TlsCertificate, options.TlsCertificateKey, options.TlsCertificatePassword);
                if (!certificate.HasPrivateKey)
                {
                    failures.Add($"{ClusterTls.CertificateSetting}: '{options.TlsCertificate}' has no private key.");
                }
            }
            catch (Exception exception) when (exception is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
            {
                // The exception text is left out: it may describe the key material.
                failures.Add($"{ClusterTls.CertificateSetting}: '{options.TlsCertificate}' could not be read as a PKCS#12 file or a PEM certificate with its key ({ClusterTls.KeySetting}) and {ClusterTls.PasswordSetting}.");
            }
        }

        if (!string.IsNullOrWhiteSpace(options.TlsCaCertificate))
        {
            try
            {
                if (ClusterTls.LoadAuthorities(options.TlsCaCertificate).Count == 0)
                {
                    failures.Add($"{ClusterTls.CaSetting}: '{options.TlsCaCertificate}' holds no PEM certificate.");
                }
            }
            catch (Exception exception) when (exception is CryptographicException or IOException or UnauthorizedAccessException)
            {
                failures.Add($"{ClusterTls.CaSetting}: '{options.TlsCaCertificate}' could not be read as PEM certificates.");
            }
        }
    }
}
