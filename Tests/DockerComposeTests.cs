using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>The docker-compose.yml for users is valid and describes the topology the fault tests run as processes.</summary>
public sealed class DockerComposeTests(RedisServer redis)
{
    private const string ApiKey = "compose-test-key-0123456789";

    [Fact]
    public async Task The_compose_file_is_valid_and_has_redis_with_aof_three_silos_a_load_balancer_and_prometheus_all_with_health_checks()
    {
        var root = RepositoryDirectory.Root;
        var config = await RunAsync(root, "config", ("SESSIONGRAINS_TOKEN_KEYS", "k1:" + Convert.ToBase64String(new byte[32])), ("SESSIONGRAINS_API_KEY", ApiKey));
        var services = (await RunAsync(root, "config --services", ("SESSIONGRAINS_TOKEN_KEYS", "k1:x"), ("SESSIONGRAINS_API_KEY", ApiKey))).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

        Assert.Equal(["api", "prometheus", "redis", "silo1", "silo2", "silo3"], services.Order());
        Assert.Contains("--appendonly", config, StringComparison.Ordinal);
        Assert.Equal(services.Length, CountOccurrences(config, "healthcheck:"));
        Assert.Equal(services.Length, CountOccurrences(config, "restart: unless-stopped"));
        Assert.Equal(3, CountOccurrences(config, "SessionStore__Redis: redis:6379"));
        var prometheus = await File.ReadAllTextAsync(Path.Combine(root, "deploy", "prometheus.yml"), TestContext.Current.CancellationToken);
        Assert.Contains("\"silo1:8080\", \"silo2:8080\", \"silo3:8080\"", prometheus, StringComparison.Ordinal);
        Assert.Contains("X-Api-Key:", prometheus, StringComparison.Ordinal);
        Assert.DoesNotContain(ApiKey, prometheus, StringComparison.Ordinal);
        Assert.DoesNotContain("ip_hash", await File.ReadAllTextAsync(Path.Combine(root, "deploy", "nginx.conf"), TestContext.Current.CancellationToken), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_postgres_compose_file_migrates_the_schema_before_any_of_its_three_silos_starts_and_has_no_redis()
    {
        const string Compose = "docker-compose.postgres.yml";
        (string, string)[] required = [("SESSIONGRAINS_TOKEN_KEYS", "k1:x"), ("SESSIONGRAINS_API_KEY", ApiKey), ("SESSIONGRAINS_POSTGRES_PASSWORD", "compose-test-password")];
        var config = await RunAsync(RepositoryDirectory.Root, Compose, "config", required);
        var services = (await RunAsync(RepositoryDirectory.Root, Compose, "config --services", required)).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

        Assert.Equal(["api", "migrate", "postgres", "silo1", "silo2", "silo3"], services.Order());
        Assert.Equal(4, CountOccurrences(config, "SessionStore__Postgres: Host=postgres;Database=sessions;Username=sessiongrains;Password=compose-test-password"));
        Assert.Equal(3, CountOccurrences(config, "condition: service_completed_successfully"));
        Assert.Contains("- migrate", config, StringComparison.Ordinal);
        Assert.Equal(services.Length - 1, CountOccurrences(config, "healthcheck:")); // all but the one-shot migration
        Assert.DoesNotContain("Redis", config, StringComparison.Ordinal);
        Assert.Contains("- 127.0.0.1:8080:8080", config, StringComparison.Ordinal);

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => RunAsync(RepositoryDirectory.Root, Compose, "config", required[..2]));
        Assert.Contains("set SESSIONGRAINS_POSTGRES_PASSWORD", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_token_keys_the_compose_file_refuses_to_start()
    {
        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => RunAsync(RepositoryDirectory.Root, "config"));
        Assert.Contains("SESSIONGRAINS_TOKEN_KEYS", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_an_api_key_the_compose_file_refuses_to_start_and_says_what_to_set()
    {
        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => RunAsync(RepositoryDirectory.Root, "config", ("SESSIONGRAINS_TOKEN_KEYS", "k1:x")));
        Assert.Contains("set SESSIONGRAINS_API_KEY", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_silo_with_exactly_the_environment_the_compose_file_gives_it_starts_and_requires_the_key()
    {
        var tokenKeys = SiloApiFactory.TestTokenKeys;
        var config = await RunAsync(RepositoryDirectory.Root, "config", ("SESSIONGRAINS_TOKEN_KEYS", tokenKeys), ("SESSIONGRAINS_API_KEY", ApiKey));
        var environment = SiloEnvironment(config, "silo1");
        Assert.Equal(ApiKey, environment["SessionStore__ApiKey"]);
        Assert.Equal("redis:6379", environment["SessionStore__Redis"]);

        // Only the network differs outside a container: the fixture's Redis for the host name, free loopback ports.
        environment["SessionStore__Redis"] = redis.ConnectionString;
        environment["SessionStore__SiloPort"] = RedisServer.FreePort().ToString();
        environment["SessionStore__GatewayPort"] = RedisServer.FreePort().ToString();
        environment["SessionStore__AdvertisedAddress"] = "127.0.0.1";
        var httpPort = RedisServer.FreePort();
        environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{httpPort}";

        var directory = LocalCluster.SiloProcess.SiloBinaryDirectory();
        var start = new ProcessStartInfo("dotnet", [Path.Combine(directory, "SessionGrains.Silo.dll")])
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var inherited in start.Environment.Keys.Where(k => k.StartsWith("SessionStore__", StringComparison.Ordinal) || k.StartsWith("ASPNETCORE_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(inherited);
        }

        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        using var silo = Process.Start(start)!;
        var output = new System.Text.StringBuilder();
        silo.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        silo.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        silo.BeginOutputReadLine();
        silo.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}") };
            await WaitHealthyAsync(silo, http, output);
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/stats", TestContext.Current.CancellationToken)).StatusCode);
            http.DefaultRequestHeaders.Add("X-Api-Key", ApiKey);
            Assert.Equal(HttpStatusCode.Created, (await http.PostAsJsonAsync("/sessions", new { userId = "compose" }, TestContext.Current.CancellationToken)).StatusCode);
        }
        finally
        {
            silo.Kill(entireProcessTree: true);
            await silo.WaitForExitAsync(TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task The_api_is_published_on_loopback_unless_an_address_is_given()
    {
        var root = RepositoryDirectory.Root;
        (string, string)[] required = [("SESSIONGRAINS_TOKEN_KEYS", "k1:x"), ("SESSIONGRAINS_API_KEY", ApiKey)];

        Assert.Contains("- 127.0.0.1:8080:8080", await RunAsync(root, "config", required), StringComparison.Ordinal);
        Assert.Contains("- 0.0.0.0:8080:8080", await RunAsync(root, "config", [.. required, ("SESSIONGRAINS_API_ADDRESS", "0.0.0.0")]), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_load_balancer_keeps_the_client_headers_a_backend_sends_and_fills_in_its_peer_only_when_absent()
    {
        var nginx = await File.ReadAllTextAsync(Path.Combine(RepositoryDirectory.Root, "deploy", "nginx.conf"), TestContext.Current.CancellationToken);
        var lines = nginx.Split('\n').Select(l => l.Trim()).ToList();

        Assert.Contains("proxy_set_header X-Client-IP $client_ip;", lines);
        Assert.Contains("proxy_set_header X-Client-User-Agent $client_user_agent;", lines);
        Assert.Contains("map $http_x_client_ip $client_ip {", lines);
        Assert.Contains("map $http_x_client_user_agent $client_user_agent {", lines);
        Assert.Contains("\"\"      $remote_addr;", lines);
        Assert.Contains("default $http_x_client_ip;", lines);
        Assert.Contains("default $http_x_client_user_agent;", lines);
    }

    /// <summary>A service's environment block from <c>docker-compose config</c> output (one <c>NAME: value</c> a line).</summary>
    private static Dictionary<string, string> SiloEnvironment(string config, string service)
    {
        var lines = config.Split('\n');
        var serviceLine = Array.IndexOf(lines, $"  {service}:");
        Assert.True(serviceLine >= 0, $"{service} is not in the compose file");
        var environmentLine = Array.FindIndex(lines, serviceLine, l => l == "    environment:");
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in lines.Skip(environmentLine + 1).TakeWhile(l => l.StartsWith("      ", StringComparison.Ordinal)))
        {
            var (name, value) = (line[..line.IndexOf(':', StringComparison.Ordinal)].Trim(), line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim());
            environment[name] = value.Length > 1 && value[0] is '"' or '\'' && value[^1] == value[0] ? value[1..^1] : value;
        }

        return environment;
    }

    private static async Task WaitHealthyAsync(Process silo, HttpClient http, System.Text.StringBuilder output)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            Assert.False(silo.HasExited, $"The silo exited with the compose environment: {output}");
            try
            {
                if ((await http.GetAsync("/health", TestContext.Current.CancellationToken)).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            Assert.True(DateTime.UtcNow < deadline, $"The silo was not healthy within a minute: {output}");
            await Task.Delay(200, TestContext.Current.CancellationToken);
        }
    }

    private static int CountOccurrences(string text, string value) =>
        (text.Length - text.Replace(value, "", StringComparison.Ordinal).Length) / value.Length;

    private static Task<string> RunAsync(string root, string arguments, params (string Name, string Value)[] environment) =>
        RunAsync(root, "docker-compose.yml", arguments, environment);

    private static async Task<string> RunAsync(string root, string file, string arguments, params (string Name, string Value)[] environment)
    {
        var executable = new[] { "/usr/bin/docker-compose", "/usr/local/bin/docker-compose" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("docker-compose was not found: install the Debian package 'docker-compose' (./test.sh does).");
        var start = new ProcessStartInfo(executable, $"-f {file} " + arguments)
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment.Remove("SESSIONGRAINS_TOKEN_KEYS");
        start.Environment.Remove("SESSIONGRAINS_API_KEY");
        start.Environment.Remove("SESSIONGRAINS_API_ADDRESS");
        start.Environment.Remove("SESSIONGRAINS_POSTGRES_PASSWORD");
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        return process.ExitCode == 0
            ? await output
            : throw new InvalidOperationException($"docker-compose {arguments} failed: {await error}");
    }
}
