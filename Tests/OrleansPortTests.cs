using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using SessionGrains.Silo;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>
/// Whoever reaches the silo or gateway port is a full Orleans client, past the API key and the token MAC: the ports
/// listen on the advertised (private) address only, and with mutual TLS only members of the cluster get in.
/// </summary>
public sealed class OrleansPortTests(RedisServer redis) : IDisposable
{
    private const string Password = "pfx-password-not-for-logs";

    /// <summary>How long a frontend that must not get in is given to get in anyway; a trusted one connects in about a second.</summary>
    private static readonly TimeSpan Refused = TimeSpan.FromSeconds(8);

    private readonly string _directory = Directory.CreateTempSubdirectory("sessiongrains-mtls-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_silo_and_gateway_ports_listen_on_the_advertised_address_only()
    {
        await using var silo = SiloApiFactory.Create(redis, ("SessionStore:AdvertisedAddress", "127.0.0.2"));
        using var http = silo.CreateClient();
        var (siloPort, gatewayPort) = Ports(silo);

        Assert.True(await AcceptsAsync(IPAddress.Parse("127.0.0.2"), gatewayPort), "the gateway does not listen on its advertised address");
        Assert.True(await AcceptsAsync(IPAddress.Parse("127.0.0.2"), siloPort), "the silo port does not listen on its advertised address");
        Assert.False(await AcceptsAsync(IPAddress.Loopback, gatewayPort), "the gateway listens on an address it does not advertise");
        Assert.False(await AcceptsAsync(IPAddress.Loopback, siloPort), "the silo port listens on an address it does not advertise");
    }

    [Fact]
    public async Task With_listen_on_any_address_the_ports_take_connections_on_every_interface()
    {
        await using var silo = SiloApiFactory.Create(redis, ("SessionStore:AdvertisedAddress", "127.0.0.2"), ("SessionStore:ListenOnAnyAddress", "true"));
        using var http = silo.CreateClient();
        var (siloPort, gatewayPort) = Ports(silo);

        Assert.True(await AcceptsAsync(IPAddress.Loopback, gatewayPort));
        Assert.True(await AcceptsAsync(IPAddress.Loopback, siloPort));
    }

    [Fact]
    public async Task With_mutual_tls_frontends_with_a_certificate_the_cluster_trusts_connect_and_others_cannot()
    {
        using var ca = TestCertificates.CreateAuthority("SessionGrains cluster CA");
        using var stranger = TestCertificates.CreateAuthority("Someone else's CA");
        using var siloCertificate = TestCertificates.IssueMember(ca, "silo");
        using var frontendCertificate = TestCertificates.IssueMember(ca, "frontend");
        using var strangerCertificate = TestCertificates.IssueMember(stranger, "frontend");
        var caPath = TestCertificates.WritePem(ca, _directory, "ca").Certificate;
        await using var silo = SiloApiFactory.Create(
            redis,
            ("SessionStore:TlsCertificate", TestCertificates.WritePfx(siloCertificate, _directory, "silo", Password)),
            ("SessionStore:TlsCertificatePassword", Password),
            ("SessionStore:TlsCaCertificate", caPath));
        using var http = silo.CreateClient();
        var created = JsonDocument.Parse(await (await http.PostAsJsonAsync("/sessions", new { userId = "mtls-user" }, Ct)).Content.ReadAsStringAsync(Ct));
        var token = created.RootElement.GetProperty("token").GetString();
        var (frontendPem, frontendKey) = TestCertificates.WritePem(frontendCertificate, _directory, "frontend");

        // A member certificate as PEM trusting the CA; the same as PKCS#12 trusting only the silo's pinned fingerprint.
        using var member = Frontend(silo, ("TlsCertificate", frontendPem), ("TlsCertificateKey", frontendKey), ("TlsCaCertificate", caPath));
        using var pinned = Frontend(
            silo,
            ("TlsCertificate", TestCertificates.WritePfx(frontendCertificate, _directory, "frontend", Password)),
            ("TlsCertificatePassword", Password),
            ("TlsAllowedThumbprints", Convert.ToHexString(siloCertificate.GetCertHash(HashAlgorithmName.SHA256))));
        await Task.WhenAll(member.StartAsync(Ct), pinned.StartAsync(Ct)).WaitAsync(TimeSpan.FromSeconds(60), Ct);
        Assert.Equal("mtls-user", (await member.Services.GetRequiredService<ISessionStore>().ValidateAsync(token, cancellationToken: Ct))?.UserId);
        Assert.Equal("mtls-user", (await pinned.Services.GetRequiredService<ISessionStore>().ValidateAsync(token, cancellationToken: Ct))?.UserId);

        // Plain TCP, a certificate of another CA, and a member that pins another fingerprint never reach the gateway.
        var (strangerPem, strangerKey) = TestCertificates.WritePem(strangerCertificate, _directory, "stranger");
        using var plain = Frontend(silo);
        using var outsider = Frontend(silo, ("TlsCertificate", strangerPem), ("TlsCertificateKey", strangerKey), ("TlsCaCertificate", caPath));
        using var mispinned = Frontend(silo, ("TlsCertificate", frontendPem), ("TlsCertificateKey", frontendKey), ("TlsAllowedThumbprints", new string('A', 64)));
        await Task.WhenAll(AssertNeverConnectsAsync(plain), AssertNeverConnectsAsync(outsider), AssertNeverConnectsAsync(mispinned));
        await Task.WhenAll(member.StopAsync(Ct), pinned.StopAsync(Ct));
    }

    [Theory]
    [InlineData("TlsCertificatePassword", "wrong-password", "SessionStore:TlsCertificate")]
    [InlineData("TlsCertificate", "/nonexistent/silo.pfx", "SessionStore:TlsCertificate")]
    [InlineData("TlsCaCertificate", null, "SessionStore:TlsCaCertificate or SessionStore:TlsAllowedThumbprints")]
    [InlineData("TlsAllowedThumbprints", "not-a-fingerprint", "SessionStore:TlsAllowedThumbprints")]
    [InlineData("TlsCaCertificate", "/nonexistent/ca.crt", "SessionStore:TlsCaCertificate")]
    public async Task Bad_tls_settings_stop_start_up_naming_the_setting_and_never_the_password(string setting, string? value, string named)
    {
        using var ca = TestCertificates.CreateAuthority("SessionGrains cluster CA");
        using var certificate = TestCertificates.IssueMember(ca, "frontend");
        var settings = new Dictionary<string, string?>
        {
            ["SessionStore:TlsCertificate"] = TestCertificates.WritePfx(certificate, _directory, "frontend", Password),
            ["SessionStore:TlsCertificatePassword"] = Password,
            ["SessionStore:TlsCaCertificate"] = TestCertificates.WritePem(ca, _directory, "ca").Certificate,
            ["SessionStore:GatewayPort"] = RedisServer.FreePort().ToString(),
        };
        settings["SessionStore:" + setting] = value;
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddSessionGrainsClient(builder.Configuration.GetSection("SessionStore"));
        using var host = builder.Build();

        var failure = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));

        Assert.Contains(named, failure.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, failure.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-password", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_trusted_ca_without_a_certificate_stops_start_up_instead_of_running_in_plain_text()
    {
        using var ca = TestCertificates.CreateAuthority("SessionGrains cluster CA");
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddSessionGrainsClient(o =>
        {
            o.GatewayPort = RedisServer.FreePort();
            o.TlsCaCertificate = TestCertificates.WritePem(ca, _directory, "ca").Certificate;
        });
        using var host = builder.Build();

        var failure = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));

        Assert.Contains("need SessionStore:TlsCertificate", failure.Message, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static (int Silo, int Gateway) Ports(SiloApiFactory silo) => (
        silo.Services.GetRequiredService<IOptions<SiloHostOptions>>().Value.SiloPort,
        silo.Services.GetRequiredService<IOptions<SessionClusterOptions>>().Value.GatewayPort);

    private static async Task<bool> AcceptsAsync(IPAddress address, int port)
    {
        using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(address, port, Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(5), Ct);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>A frontend on the silo's cluster with <paramref name="tls"/> settings (names under <c>SessionStore:</c>).</summary>
    private IHost Frontend(SiloApiFactory silo, params (string Setting, string Value)[] tls)
    {
        var settings = new Dictionary<string, string?>
        {
            ["SessionStore:Redis"] = redis.ConnectionString,
            ["SessionStore:ClusterId"] = silo.ClusterId,
            ["SessionStore:ServiceId"] = silo.ServiceId,
            ["SessionStore:TokenKeys"] = SiloApiFactory.TestTokenKeys,
        };
        foreach (var (setting, value) in tls)
        {
            settings["SessionStore:" + setting] = value;
        }

        var builder = Host.CreateApplicationBuilder();
        builder.Logging.AddTokenLogWatch();
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddSessionGrainsClient(builder.Configuration.GetSection("SessionStore"));
        return builder.Build();
    }

    /// <summary>Orleans' client keeps retrying its first connection: one that is refused is still starting when the wait ends.</summary>
    private static async Task AssertNeverConnectsAsync(IHost frontend)
    {
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        wait.CancelAfter(Refused);
        var starting = frontend.StartAsync(wait.Token);
        var outcome = await Record.ExceptionAsync(() => starting);
        Assert.True(outcome is OperationCanceledException or TimeoutException or Orleans.Runtime.OrleansException, $"a frontend the cluster does not trust connected, or failed otherwise: {outcome}");
    }
}
