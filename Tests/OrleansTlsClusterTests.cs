using System.Net;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>Mutual TLS on every Orleans connection of real silo processes: silo to silo, and frontend to gateway.</summary>
[Trait("Category", "Faults")]
[Collection(FaultCollection.Name)]
public sealed class OrleansTlsClusterTests(RedisServer redis)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Two_silo_processes_form_a_cluster_over_mutual_tls_and_serve_a_frontend_with_a_member_certificate()
    {
        var directory = Directory.CreateTempSubdirectory("sessiongrains-mtls-cluster-").FullName;
        try
        {
            using var ca = TestCertificates.CreateAuthority("SessionGrains cluster CA");
            using var siloCertificate = TestCertificates.IssueMember(ca, "silo");
            using var frontendCertificate = TestCertificates.IssueMember(ca, "frontend");
            var caPath = TestCertificates.WritePem(ca, directory, "ca").Certificate;
            var silosPfx = TestCertificates.WritePfx(siloCertificate, directory, "silo", "silo-pfx-password");
            var (frontendPem, frontendKey) = TestCertificates.WritePem(frontendCertificate, directory, "frontend");

            // The cluster settles on two active silos only if each reaches the other over TLS.
            await using var cluster = await LocalCluster.StartAsync(redis.ConnectionString, 2, prepare: c =>
            {
                c.Environment["SessionStore__TlsCertificate"] = silosPfx;
                c.Environment["SessionStore__TlsCertificatePassword"] = "silo-pfx-password";
                c.Environment["SessionStore__TlsCaCertificate"] = caPath;
                c.ClientSettings = o => (o.TlsCertificate, o.TlsCertificateKey, o.TlsCaCertificate) = (frontendPem, frontendKey, caPath);
            });

            // Sessions made through the frontend are found through either silo, wherever their grain lives.
            var tokens = new List<string>();
            for (var i = 0; i < 10; i++)
            {
                tokens.Add((await CreateAsync(cluster.Store)).Token.Value);
            }

            foreach (var silo in cluster.Silos)
            {
                foreach (var token in tokens)
                {
                    using var request = new HttpRequestMessage(HttpMethod.Get, "/sessions/current");
                    request.Headers.Add("X-Session-Token", token);
                    Assert.Equal(HttpStatusCode.OK, (await silo.Http.SendAsync(request, Ct)).StatusCode);
                }
            }

            // A create that timed out may still have been written.
            Assert.InRange(await cluster.Store.CountForUserAsync("mtls-cluster-user", Ct), 10, 12);
            Assert.DoesNotContain(cluster.SiloLogLines(), line => line.Contains("silo-pfx-password", StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>A create, tried again when a starved machine lets a Redis write time out: this test is about the connections, not storage.</summary>
    private static async Task<CreatedSession> CreateAsync(ISessionStore store)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await store.CreateAsync("mtls-cluster-user", cancellationToken: Ct);
            }
            catch (SessionStoreUnavailableException) when (attempt < 3)
            {
                await Task.Delay(500, Ct);
            }
        }
    }
}
