using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace SessionGrains;

/// <summary>
/// This process's certificate and the peers it accepts on the Orleans silo and gateway connections (mutual TLS),
/// from the <c>SessionStore:Tls*</c> settings. The files are read on first use, after start-up validation has
/// checked them.
/// </summary>
internal sealed class ClusterTls
{
    public const string CertificateSetting = SessionClusterOptions.SectionName + ":" + nameof(SessionClusterOptions.TlsCertificate);
    public const string KeySetting = SessionClusterOptions.SectionName + ":" + nameof(SessionClusterOptions.TlsCertificateKey);
    public const string PasswordSetting = SessionClusterOptions.SectionName + ":" + nameof(SessionClusterOptions.TlsCertificatePassword);
    public const string CaSetting = SessionClusterOptions.SectionName + ":" + nameof(SessionClusterOptions.TlsCaCertificate);
    public const string ThumbprintsSetting = SessionClusterOptions.SectionName + ":" + nameof(SessionClusterOptions.TlsAllowedThumbprints);

    private readonly Lazy<X509Certificate2> _certificate;
    private readonly Lazy<X509Certificate2Collection> _authorities;
    private readonly HashSet<string> _thumbprints;

    private ClusterTls(SessionClusterOptions options)
    {
        var (certificate, key, password, ca) = (options.TlsCertificate!, options.TlsCertificateKey, options.TlsCertificatePassword, options.TlsCaCertificate);
        _certificate = new Lazy<X509Certificate2>(() => LoadCertificate(certificate, key, password));
        _authorities = new Lazy<X509Certificate2Collection>(() => ca is null ? [] : LoadAuthorities(ca));
        _thumbprints = ParseThumbprints(options.TlsAllowedThumbprints) ?? [];
    }

    /// <summary>This process's certificate, with its private key.</summary>
    public X509Certificate2 Certificate => _certificate.Value;

    /// <summary>Null when <see cref="SessionClusterOptions.TlsCertificate"/> is not set: the Orleans connections are plain TCP.</summary>
    public static ClusterTls? From(SessionClusterOptions options) =>
        string.IsNullOrWhiteSpace(options.TlsCertificate) ? null : new ClusterTls(options);

    /// <summary>
    /// Whether a peer (silo or client) is a member of this cluster: its certificate is one of the allowed thumbprints
    /// when they are set, and chains to the configured CA when it is set. The operating system's trust store and host
    /// names play no part: any certificate a public CA issued would otherwise be a member, and peers are reached by IP.
    /// </summary>
    public bool IsTrusted(X509Certificate2 peer, X509Chain? presented, SslPolicyErrors errors)
    {
        if (_thumbprints.Count > 0 && !_thumbprints.Contains(Convert.ToHexString(peer.GetCertHash(HashAlgorithmName.SHA256))))
        {
            return false;
        }

        if (_authorities.Value.Count == 0)
        {
            return true;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_authorities.Value);

        // A private cluster CA publishes no revocation list: a certificate is withdrawn by leaving it out of the thumbprints or replacing the CA.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (presented is not null)
        {
            // Intermediates the peer sent; only the configured CA is a trust anchor.
            foreach (var element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        return chain.Build(peer);
    }

    /// <summary>A PKCS#12 file (with <paramref name="password"/>), or a PEM certificate with its key in <paramref name="keyPath"/> or in the same file.</summary>
    internal static X509Certificate2 LoadCertificate(string path, string? keyPath, string? password)
    {
        var pem = File.ReadAllText(path).Contains("-----BEGIN", StringComparison.Ordinal);
        if (!pem)
        {
            return X509CertificateLoader.LoadPkcs12FromFile(path, password);
        }

        using var loaded = string.IsNullOrEmpty(password)
            ? X509Certificate2.CreateFromPemFile(path, keyPath)
            : X509Certificate2.CreateFromEncryptedPemFile(path, password, keyPath);

        // SslStream on Windows cannot use a key that exists only in memory, as a PEM key does; a PKCS#12 round trip persists it.
        return X509CertificateLoader.LoadPkcs12(loaded.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>Every certificate in a PEM file.</summary>
    internal static X509Certificate2Collection LoadAuthorities(string path)
    {
        var authorities = new X509Certificate2Collection();
        authorities.ImportFromPemFile(path);
        return authorities;
    }

    /// <summary>Upper-case hex SHA-256 fingerprints from a comma-separated list (colons and spaces ignored); null when one is not 64 hex digits.</summary>
    internal static HashSet<string>? ParseThumbprints(string? list)
    {
        var thumbprints = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in (list ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var hex = entry.Replace(":", "", StringComparison.Ordinal).Replace(" ", "", StringComparison.Ordinal).ToUpperInvariant();
            if (hex.Length != 64 || !hex.All(Uri.IsHexDigit))
            {
                return null;
            }

            thumbprints.Add(hex);
        }

        return thumbprints;
    }
}
