using System.Diagnostics;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>The docker-compose.yml for users is valid and describes the topology the fault tests run as processes.</summary>
public sealed class DockerComposeTests
{
    [Fact]
    public async Task The_compose_file_is_valid_and_has_redis_with_aof_three_silos_and_a_load_balancer_all_with_health_checks()
    {
        var root = RepositoryDirectory.Root;
        var config = await RunAsync(root, "config", ("SESSIONGRAINS_TOKEN_KEYS", "k1:" + Convert.ToBase64String(new byte[32])));
        var services = (await RunAsync(root, "config --services", ("SESSIONGRAINS_TOKEN_KEYS", "k1:x"))).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

        Assert.Equal(["api", "redis", "silo1", "silo2", "silo3"], services.Order());
        Assert.Contains("--appendonly", config, StringComparison.Ordinal);
        Assert.Equal(services.Length, CountOccurrences(config, "healthcheck:"));
        Assert.Equal(services.Length, CountOccurrences(config, "restart: unless-stopped"));
        Assert.Equal(3, CountOccurrences(config, "SessionStore__Redis: redis:6379"));
        Assert.DoesNotContain("ip_hash", await File.ReadAllTextAsync(Path.Combine(root, "deploy", "nginx.conf"), TestContext.Current.CancellationToken), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_token_keys_the_compose_file_refuses_to_start()
    {
        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => RunAsync(RepositoryDirectory.Root, "config"));
        Assert.Contains("SESSIONGRAINS_TOKEN_KEYS", failure.Message, StringComparison.Ordinal);
    }

    private static int CountOccurrences(string text, string value) =>
        (text.Length - text.Replace(value, "", StringComparison.Ordinal).Length) / value.Length;

    private static async Task<string> RunAsync(string root, string arguments, params (string Name, string Value)[] environment)
    {
        var executable = new[] { "/usr/bin/docker-compose", "/usr/local/bin/docker-compose" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("docker-compose was not found: install the Debian package 'docker-compose' (./test.sh does).");
        var start = new ProcessStartInfo(executable, "-f docker-compose.yml " + arguments)
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment.Remove("SESSIONGRAINS_TOKEN_KEYS");
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
