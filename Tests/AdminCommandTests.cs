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
    private const string FrontendKey = "frontend-cli-key-0123456789abcdef";

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

    [Fact]
    public async Task Silos_lists_the_running_silo_as_active_and_this_one_in_a_table_and_in_json()
    {
        var json = JsonDocument.Parse((await RunAsync(0, "silos", "--json")).Output).RootElement;
        var member = Assert.Single(json.EnumerateArray());
        Assert.EndsWith($":{silo.SiloPort}", member.GetProperty("address").GetString(), StringComparison.Ordinal);
        Assert.Equal("active", member.GetProperty("status").GetString());
        Assert.True(member.GetProperty("isThisSilo").GetBoolean());
        Assert.False(string.IsNullOrEmpty(member.GetProperty("host").GetString()));
        var started = member.GetProperty("startedAt").GetDateTimeOffset();
        Assert.InRange(started, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddSeconds(5));

        var table = (await RunAsync(0, "silos")).Output.Trim().Split('\n');
        Assert.Equal(2, table.Length); // header and the one silo
        Assert.StartsWith("ADDRESS", table[0], StringComparison.Ordinal);
        Assert.Contains(member.GetProperty("address").GetString()!, table[1], StringComparison.Ordinal);
        Assert.Contains("active", table[1], StringComparison.Ordinal);
        Assert.EndsWith("*", table[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Silos_needs_the_admin_key_a_frontend_key_exits_4()
    {
        var refused = await RunWithKeyAsync(FrontendKey, ExitCodes.Unauthorized, "silos");
        Assert.Contains("403", refused.Error, StringComparison.Ordinal);
        Assert.DoesNotContain(FrontendKey, refused.Output + refused.Error, StringComparison.Ordinal);
        Assert.Equal("", refused.Output);
        await RunWithKeyAsync("not-the-admin-key-0123456789", ExitCodes.Unauthorized, "silos", "--json");
    }

    [Fact]
    public async Task Revoke_all_with_a_users_file_signs_out_each_listed_user_and_no_one_else()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        string[] listed = [$"incident-a-{run}", $"incident-b-{run}", $"incident-c-{run}"];
        var bystander = $"bystander-{run}";
        await silo.CreateSessionAsync(listed[0], role: null);
        await silo.CreateSessionAsync(listed[0], role: null);
        await silo.CreateSessionAsync(listed[1], role: null);
        await silo.CreateSessionAsync(bystander, role: null); // listed[2] has no session
        var file = Path.Combine(Path.GetTempPath(), $"users-{run}.txt");
        await File.WriteAllTextAsync(file, $"# compromised accounts\n{listed[0]}\n\n  {listed[1]}  \r\n{listed[0]}\n{listed[2]}\n", TestContext.Current.CancellationToken);
        try
        {
            var (output, error) = await RunAsync(0, "sessions", "revoke-all", "--users-file", file, "--json");
            Assert.Equal("", error); // no progress bar when stderr is not a terminal
            var summary = JsonDocument.Parse(output).RootElement;
            Assert.Equal(3, summary.GetProperty("total").GetInt32());
            Assert.Equal(3, summary.GetProperty("done").GetInt32());
            Assert.Equal(0, summary.GetProperty("failed").GetInt32());
            Assert.Equal(3, summary.GetProperty("ended").GetInt32());
            Assert.Equal(
                [(listed[0], 2), (listed[1], 1), (listed[2], 0)],
                summary.GetProperty("users").EnumerateArray().Select(u => (u.GetProperty("userId").GetString()!, u.GetProperty("ended").GetInt32())));
            Assert.All(summary.GetProperty("users").EnumerateArray(), u => Assert.Equal("done", u.GetProperty("status").GetString()));
        }
        finally
        {
            File.Delete(file);
        }

        foreach (var user in listed)
        {
            Assert.Equal(0, await silo.CountForUserAsync(user));
        }

        Assert.Equal(1, await silo.CountForUserAsync(bystander));
    }

    [Fact]
    public async Task Revoke_all_reads_users_from_standard_input_and_prints_a_table_and_a_bar_only_on_a_terminal()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        await silo.CreateSessionAsync($"stdin-a-{run}", role: null);
        await silo.CreateSessionAsync($"stdin-b-{run}", role: null);

        var onTerminal = await RunInteractiveAsync(0, $"stdin-a-{run}\nstdin-b-{run}\n", errorIsTerminal: true, "sessions", "revoke-all", "--users-file", "-");
        Assert.Contains("] 2/2 users", onTerminal.Error, StringComparison.Ordinal); // the bar was drawn...
        Assert.EndsWith("\r", onTerminal.Error, StringComparison.Ordinal); // ...and erased before the summary
        var rows = onTerminal.Output.Trim().Split('\n');
        Assert.StartsWith("USER", rows[0], StringComparison.Ordinal);
        Assert.Contains(rows, row => row.StartsWith($"stdin-a-{run}", StringComparison.Ordinal) && row.Contains(" 1 ", StringComparison.Ordinal) && row.TrimEnd().EndsWith("done", StringComparison.Ordinal));
        Assert.Contains("Signed out 2 of 2 users (2 sessions ended); 0 failed.", onTerminal.Output, StringComparison.Ordinal);

        var json = await RunInteractiveAsync(0, $"stdin-a-{run}\n", errorIsTerminal: true, "sessions", "revoke-all", "--users-file", "-", "--json");
        Assert.Equal("", json.Error); // --json: no bar even on a terminal
        Assert.Equal(0, JsonDocument.Parse(json.Output).RootElement.GetProperty("ended").GetInt32());
    }

    [Fact]
    public async Task Revoke_all_with_a_users_file_reports_each_user_the_cluster_refused_and_exits_1()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        await silo.CreateSessionAsync($"fine-{run}", role: null);
        var tooLong = new string('x', SessionIds.MaxUserIdLength + 1);
        var file = Path.Combine(Path.GetTempPath(), $"users-{run}.txt");
        await File.WriteAllTextAsync(file, $"{tooLong}\nfine-{run}\n", TestContext.Current.CancellationToken);
        try
        {
            var summary = JsonDocument.Parse((await RunAsync(ExitCodes.Failed, "sessions", "revoke-all", "--users-file", file, "--json")).Output).RootElement;
            Assert.Equal(1, summary.GetProperty("done").GetInt32());
            Assert.Equal(1, summary.GetProperty("failed").GetInt32());
            var refused = summary.GetProperty("users")[0];
            Assert.Equal("failed", refused.GetProperty("status").GetString());
            Assert.Contains("longer than", refused.GetProperty("error").GetString(), StringComparison.Ordinal);
            Assert.False(refused.TryGetProperty("ended", out _));
            Assert.Equal(1, summary.GetProperty("users")[1].GetProperty("ended").GetInt32());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Revoke_all_with_a_users_file_stops_when_the_cluster_is_unreachable_and_says_how_far_it_got()
    {
        var file = Path.Combine(Path.GetTempPath(), $"users-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(file, string.Join('\n', Enumerable.Range(0, 20).Select(i => $"user-{i}")), TestContext.Current.CancellationToken);
        try
        {
            var result = await Run(ExitCodes.Unreachable, "sessions", "revoke-all", "--users-file", file, "--json", "--url", $"http://127.0.0.1:{RedisServer.FreePort()}", "--api-key", AdminKey);
            Assert.Contains("Stopped after 0 of 20 users: Cannot reach the cluster", result.Error, StringComparison.Ordinal);
            var summary = JsonDocument.Parse(result.Output).RootElement;
            Assert.Equal(0, summary.GetProperty("done").GetInt32());
            Assert.StartsWith("Cannot reach the cluster", summary.GetProperty("stoppedBy").GetString(), StringComparison.Ordinal);
            Assert.All(summary.GetProperty("users").EnumerateArray(), u => Assert.Equal("notDone", u.GetProperty("status").GetString()));
            Assert.DoesNotContain(AdminKey, result.Output + result.Error, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Revoke_all_refuses_a_missing_users_file_and_mixed_arguments_with_exit_2()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"no-such-{Guid.NewGuid():N}.txt");
        Assert.Contains("Cannot read --users-file", (await RunAsync(ExitCodes.BadArgument, "sessions", "revoke-all", "--users-file", missing)).Error, StringComparison.Ordinal);
        Assert.Contains("names no user", (await RunAsync(ExitCodes.BadArgument, "sessions", "revoke-all", "--users-file", "-")).Error, StringComparison.Ordinal); // empty stdin
        await RunAsync(ExitCodes.BadArgument, "sessions", "revoke-all");
        await RunAsync(ExitCodes.BadArgument, "sessions", "revoke-all", "someone", "--users-file", missing);
        await RunAsync(ExitCodes.BadArgument, "sessions", "revoke-all", "--users-file", missing, "--except", "whatever");
    }

    [Theory]
    [InlineData(50, 100, 10, "[#####.....] 50/100 users")]
    [InlineData(0, 3, 6, "[......] 0/3 users")]
    [InlineData(1, 3, 6, "[##....] 1/3 users")]
    [InlineData(3, 3, 6, "[######] 3/3 users")]
    [InlineData(0, 0, 4, "[####] 0/0 users")]
    public void The_progress_bar_fills_in_proportion_to_the_users_done(int done, int total, int width, string expected) =>
        Assert.Equal(expected, ProgressBar.Render(done, total, "users", width));

    [Fact]
    public void The_progress_bar_redraws_in_place_as_users_finish_and_erases_itself()
    {
        using var terminal = new StringWriter();
        var bar = new ProgressBar(terminal, total: 4, "users");
        bar.Start();
        bar.Advance();
        bar.Advance();
        var drawn = terminal.ToString();
        Assert.Equal(string.Concat(new[] { 0, 1, 2 }.Select(done => "\r" + ProgressBar.Render(done, 4, "users"))), drawn);
        bar.Clear();
        Assert.Equal(drawn + "\r" + new string(' ', ProgressBar.Render(2, 4, "users").Length) + "\r", terminal.ToString());
    }

    private async Task<long> CountAsync() =>
        JsonDocument.Parse((await RunAsync(0, "count", "--json")).Output).RootElement.GetProperty("activeSessions").GetInt64();

    private Task<(string Output, string Error)> RunAsync(int expectedExit, params string[] args) =>
        RunWithKeyAsync(AdminKey, expectedExit, args);

    private Task<(string Output, string Error)> RunWithKeyAsync(string key, int expectedExit, params string[] args) =>
        Run(expectedExit, [.. args, "--url", silo.Address.ToString(), "--api-key", key]);

    private static Task<(string Output, string Error)> Run(int expectedExit, params string[] args) =>
        RunWith(expectedExit, TextReader.Null, errorIsTerminal: false, args);

    // As from a terminal: standard input given, and stderr a terminal when asked.
    private async Task<(string Output, string Error)> RunInteractiveAsync(int expectedExit, string stdin, bool errorIsTerminal, params string[] args)
    {
        using var input = new StringReader(stdin);
        return await RunWith(expectedExit, input, errorIsTerminal, [.. args, "--url", silo.Address.ToString(), "--api-key", AdminKey]);
    }

    private static async Task<(string Output, string Error)> RunWith(int expectedExit, TextReader input, bool errorIsTerminal, string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await AdminCommandLine.RunAsync(args, input, output, error, errorIsTerminal, TestContext.Current.CancellationToken);
        Assert.True(exit == expectedExit, $"exit {exit}, expected {expectedExit}: {string.Join(' ', args.Where(a => a != AdminKey))}\n{output}\n{error}");
        return (output.ToString(), error.ToString());
    }

    /// <summary>One silo host on a loopback port with an admin API key, shared by the tests of this class.</summary>
    public sealed class AdminSilo : IAsyncLifetime
    {
        private readonly SiloApiFactory _factory = SiloApiFactory.Create(null, ("SessionStore:ApiKey", AdminKey), ("SessionStore:FrontendApiKey", FrontendKey));
        private HttpClient? _http;

        public int SiloPort => _factory.SiloPort;

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

        public async Task<int> CountForUserAsync(string userId)
        {
            using var response = await _http!.GetAsync($"/users/{Uri.EscapeDataString(userId)}/sessions/count");
            response.EnsureSuccessStatusCode();
            return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("count").GetInt32();
        }

        public async ValueTask DisposeAsync()
        {
            _http?.Dispose();
            await _factory.DisposeAsync();
        }
    }
}
