using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using SessionGrains.Admin;
using SessionGrains.Silo;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>
/// The admin command line against a real silo on a loopback port, behind an API key: each command, its JSON
/// output, and the exit codes a script relies on.
/// </summary>
public sealed class AdminCommandTests(AdminCommandTests.AdminSilo silo) : IClassFixture<AdminCommandTests.AdminSilo>
{
    private const string AdminKey = "admin-cli-key-0123456789abcdef";

    [Fact]
    public async Task List_revoke_and_revoke_all_act_on_the_sessions_the_api_created()
    {
        const string user = "https://issuer.example/users/42"; // reaches the API percent-encoded as one segment
        var before = await CountAsync();
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add(await silo.CreateSessionAsync(user, role: "member"));
        }

        Assert.Equal(before + 3, await CountAsync());

        var table = await RunAsync(0, "sessions", "list", user);
        Assert.Contains("SESSION", table.Output, StringComparison.Ordinal);
        Assert.All(ids, id => Assert.Contains(id, table.Output, StringComparison.Ordinal));
        Assert.Equal(4, table.Output.Trim().Split('\n').Length); // header and one line per session

        var json = JsonDocument.Parse((await RunAsync(0, "sessions", "list", user, "--json", "--page-size", "2")).Output); // two pages
        Assert.Equal(ids.Order(StringComparer.Ordinal), json.RootElement.EnumerateArray().Select(s => s.GetProperty("sessionId").GetString()!).Order(StringComparer.Ordinal));

        var revoked = await RunAsync(0, "sessions", "revoke", user, ids[0]);
        Assert.Contains(ids[0], revoked.Output, StringComparison.Ordinal);
        await RunAsync(ExitCodes.NotFound, "sessions", "revoke", user, ids[0]);

        var kept = JsonDocument.Parse((await RunAsync(0, "sessions", "revoke-all", user, "--except", ids[1], "--json")).Output);
        Assert.Equal(1, kept.RootElement.GetProperty("ended").GetInt32());
        Assert.Equal([ids[1]], JsonDocument.Parse((await RunAsync(0, "sessions", "list", user, "--json")).Output).RootElement.EnumerateArray().Select(s => s.GetProperty("sessionId").GetString()));

        Assert.Contains("Ended 1 session.", (await RunAsync(0, "sessions", "revoke-all", user)).Output, StringComparison.Ordinal);
        Assert.Contains("No live sessions.", (await RunAsync(0, "sessions", "list", user)).Output, StringComparison.Ordinal);
        Assert.Equal(before, await CountAsync());
    }

    [Fact]
    public async Task Count_and_health_answer_in_a_table_and_in_json()
    {
        await silo.CreateSessionAsync("count-user", role: null);
        var count = JsonDocument.Parse((await RunAsync(0, "count", "--json")).Output).RootElement.GetProperty("activeSessions").GetInt64();
        Assert.Contains($"{count} active session", (await RunAsync(0, "count")).Output, StringComparison.Ordinal);
        Assert.True(count >= 1);

        Assert.Equal("Healthy", (await RunAsync(0, "health")).Output.Trim());
        var health = JsonDocument.Parse((await RunAsync(0, "health", "--json")).Output).RootElement;
        Assert.True(health.GetProperty("healthy").GetBoolean());
        Assert.Empty(health.GetProperty("failing").EnumerateArray());
    }

    [Fact]
    public async Task A_wrong_or_missing_key_exits_4_without_printing_the_key()
    {
        const string wrong = "not-the-admin-key-0123456789";
        var refused = await RunWithKeyAsync(wrong, ExitCodes.Unauthorized, "count");
        Assert.Contains("Unauthorized", refused.Error, StringComparison.Ordinal);
        Assert.DoesNotContain(wrong, refused.Output + refused.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", refused.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_cluster_exits_3_quickly()
    {
        var started = Stopwatch.StartNew();
        var result = await Run(ExitCodes.Unreachable, "count", "--url", $"http://127.0.0.1:{RedisServer.FreePort()}", "--api-key", AdminKey);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(10), started.Elapsed.ToString());
        Assert.Contains("Cannot reach the cluster", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain(AdminKey, result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_arguments_exit_2()
    {
        await Run(ExitCodes.BadArgument, "sessions", "list");
        await Run(ExitCodes.BadArgument, "no-such-command");
        await Run(ExitCodes.BadArgument, "count", "--url", "not a url");
        await Run(ExitCodes.BadArgument, "sessions", "list", "someone", "--page-size", "0");
        await Run(ExitCodes.BadArgument, "keys", "generate", "--id", "no spaces allowed");
        await RunAsync(ExitCodes.BadArgument, "sessions", "revoke-all", "someone", "--except", "not a session id");
    }

    [Fact]
    public async Task Keys_generate_prints_a_key_a_silo_accepts_as_its_token_keys()
    {
        var printed = await Run(0, "keys", "generate", "--id", "k2");
        var key = printed.Output.Split('\n')[0].Trim();
        Assert.StartsWith("k2:", key, StringComparison.Ordinal);
        Assert.Equal(32, Convert.FromBase64String(key[3..]).Length);
        Assert.Contains("SessionStore:TokenKeys", printed.Output, StringComparison.Ordinal);

        Assert.Equal("k2", Assert.Single(SessionTokenCodec.ParseKeys(key, "SessionStore:TokenKeys")).Id);
        var json = JsonDocument.Parse((await Run(0, "keys", "generate", "--json")).Output).RootElement.GetProperty("key").GetString()!;
        Assert.Single(SessionTokenCodec.ParseKeys(json, "SessionStore:TokenKeys"));
        Assert.NotEqual(key[3..], json[(json.IndexOf(':', StringComparison.Ordinal) + 1)..]);

        // The new key first and an old one after it, as the rotation text says: a silo starts and issues tokens with it.
        await using var rotated = SiloApiFactory.Create(null, ("SessionStore:TokenKeys", key + "," + SiloApiFactory.TestTokenKeys));
        using var http = rotated.CreateClient();
        using var created = await http.PostAsJsonAsync("/sessions", new { userId = "rotated" }, TestContext.Current.CancellationToken);
        Assert.Equal(System.Net.HttpStatusCode.Created, created.StatusCode);
    }

    private async Task<long> CountAsync() =>
        JsonDocument.Parse((await RunAsync(0, "count", "--json")).Output).RootElement.GetProperty("activeSessions").GetInt64();

    private Task<(string Output, string Error)> RunAsync(int expectedExit, params string[] args) =>
        RunWithKeyAsync(AdminKey, expectedExit, args);

    private Task<(string Output, string Error)> RunWithKeyAsync(string key, int expectedExit, params string[] args) =>
        Run(expectedExit, [.. args, "--url", silo.Address.ToString(), "--api-key", key]);

    private static async Task<(string Output, string Error)> Run(int expectedExit, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await AdminCommandLine.RunAsync(args, output, error, TestContext.Current.CancellationToken);
        Assert.True(exit == expectedExit, $"exit {exit}, expected {expectedExit}: {string.Join(' ', args.Where(a => a != AdminKey))}\n{output}\n{error}");
        return (output.ToString(), error.ToString());
    }

    /// <summary>One silo host on a loopback port with an admin API key, shared by the tests of this class.</summary>
    public sealed class AdminSilo : IAsyncLifetime
    {
        private readonly SiloApiFactory _factory = SiloApiFactory.Create(null, ("SessionStore:ApiKey", AdminKey));
        private HttpClient? _http;

        public Uri Address => new(_factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

        public ValueTask InitializeAsync()
        {
            _factory.UseKestrel(0);
            _factory.StartServer();
            _http = _factory.CreateClient();
            _http.DefaultRequestHeaders.Add(ApiKeyMiddleware.Header, AdminKey);
            return ValueTask.CompletedTask;
        }

        public async Task<string> CreateSessionAsync(string userId, string? role)
        {
            using var response = await _http!.PostAsJsonAsync("/sessions", new { userId, role });
            response.EnsureSuccessStatusCode();
            return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("sessionId").GetString()!;
        }

        public async ValueTask DisposeAsync()
        {
            _http?.Dispose();
            await _factory.DisposeAsync();
        }
    }
}
