using System.Buffers.Text;
using System.Net;
using System.Security.Cryptography;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>Forged tokens are refused where they arrive: no grain activation, no storage read.</summary>
public sealed class TokenForgeryTests(RedisServer redis)
{
    private const int Forgeries = 10_000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Well-formed-looking tokens: right prefix, a configured key id, right length, random body (so a wrong MAC).</summary>
    private static IEnumerable<string> ForgedTokens(string keyId) =>
        Enumerable.Range(0, Forgeries).Select(_ => $"sg1_{keyId}_" + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(48)));

    [Fact]
    public async Task Ten_thousand_forged_tokens_through_the_client_cause_no_activation_and_no_storage_read()
    {
        await using var cluster = await SessionCluster.StartAsync(redis, 1);
        using var metrics = new MetricRecorder(cluster.Cluster.Silos.Select(s => s.ServiceProvider));
        var activationsBefore = await cluster.SessionActivationsAsync();

        foreach (var forged in ForgedTokens(cluster.Tokens.CurrentKeyId))
        {
            Assert.Null(await cluster.Store.ValidateAsync(forged, cancellationToken: Ct));
        }

        Assert.Equal(activationsBefore, await cluster.SessionActivationsAsync());
        Assert.Equal(0, metrics.Total("sessiongrains.storage.operations", "operation=read"));

        // The instruments do count: one genuine (never created) token costs one storage read, and its empty
        // activation does not linger; a real session validated stays active.
        Assert.Null(await cluster.Store.ValidateAsync(cluster.Tokens.Create().Value, cancellationToken: Ct));
        Assert.Equal(1, metrics.Total("sessiongrains.storage.operations", "operation=read", "storage=" + StorageNames.Sessions));
        var created = await cluster.Store.CreateAsync("forgery-control", cancellationToken: Ct);
        Assert.NotNull(await cluster.Store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (await cluster.SessionActivationsAsync() != activationsBefore + 1 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, Ct);
        }

        Assert.Equal(activationsBefore + 1, await cluster.SessionActivationsAsync());
    }

    [Fact]
    public async Task Ten_thousand_forged_tokens_through_the_http_api_cause_no_activation_and_no_storage_read()
    {
        await using var factory = SiloApiFactory.Create(redis);
        using var http = factory.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health", Ct)).StatusCode);
        using var metrics = new MetricRecorder([factory.Services]);
        var keyId = SiloApiFactory.TestTokenKeys.Split(':')[0];

        var statuses = new Dictionary<HttpStatusCode, int>();
        foreach (var forged in ForgedTokens(keyId))
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/sessions/current");
            request.Headers.Add("X-Session-Token", forged);
            using var response = await http.SendAsync(request, Ct);
            statuses[response.StatusCode] = statuses.GetValueOrDefault(response.StatusCode) + 1;
        }

        Assert.Equal(Forgeries, statuses.Where(s => s.Key is HttpStatusCode.NotFound or HttpStatusCode.TooManyRequests).Sum(s => s.Value));
        Assert.Equal(0, metrics.Total("sessiongrains.storage.operations", "operation=read"));
        Assert.Equal(0, metrics.Total("sessiongrains.storage.operations"));
    }
}
