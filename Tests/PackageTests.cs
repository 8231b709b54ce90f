using System.Diagnostics;
using System.Text;
using System.Text.Json;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>
/// What a user installs works: the packable libraries are packed into a local folder feed, and an app outside the
/// repository that references only those packages embeds a silo, creates a session and validates it.
/// </summary>
[Collection(FaultCollection.Name)] // Alone: packing and building take both cores for a while.
public sealed class PackageTests
{
    private const string ExpectedLine = "validated a session of user-1";

    [Fact]
    public async Task An_app_outside_the_repository_embeds_a_silo_from_the_packages_and_creates_and_validates_a_session()
    {
        var root = RepositoryRoot();
        var work = Directory.CreateTempSubdirectory("sessiongrains-packages-").FullName;
        Assert.False(work.StartsWith(root, StringComparison.Ordinal), "The consumer app must live outside the repository.");
        // A version no earlier run used, so a package cached by NuGet can never stand in for the one packed now.
        var version = "0.1.0-test." + DateTime.UtcNow.ToString("yyyyMMddHHmmssfff", System.Globalization.CultureInfo.InvariantCulture);
        var packable = PackableProjects(root);
        try
        {
            Assert.Contains(packable, p => p.EndsWith("Grains/Grains.csproj", StringComparison.Ordinal));
            Assert.Contains(packable, p => p.EndsWith("Client/Client.csproj", StringComparison.Ordinal));

            // A solution filter of the packable projects: one build of them, and a new library joins by setting IsPackable.
            var filter = Path.Combine(work, "packages.slnf");
            await File.WriteAllTextAsync(filter, JsonSerializer.Serialize(new { solution = new { path = Path.Combine(root, "SessionGrains.sln"), projects = packable } }), Ct);
            var feed = Path.Combine(work, "feed");
            await RunDotnetAsync(work, TimeSpan.FromMinutes(6),
                "pack", filter, "-c", "Release", "-o", feed, "--artifacts-path", Path.Combine(work, "artifacts"), $"-p:Version={version}");
            Assert.True(File.Exists(Path.Combine(feed, $"SessionGrains.Grains.{version}.nupkg")), "SessionGrains.Grains was not packed.");
            Assert.True(File.Exists(Path.Combine(feed, $"SessionGrains.Client.{version}.snupkg")), "SessionGrains.Client has no symbol package.");
            foreach (var package in Directory.EnumerateFiles(feed, "*.nupkg"))
            {
                // The /// docs travel with each assembly, so a consumer's IntelliSense shows them.
                using var zip = System.IO.Compression.ZipFile.OpenRead(package);
                var id = Path.GetFileName(package)[..^$".{version}.nupkg".Length];
                Assert.Contains(zip.Entries, e => e.FullName == $"lib/net10.0/{id}.xml");
            }

            var app = Path.Combine(work, "app");
            WriteConsumerApp(work, app, feed, version);
            await RunDotnetAsync(app, TimeSpan.FromMinutes(4), "build", "-c", "Release");
            var output = await RunDotnetAsync(app, TimeSpan.FromMinutes(2),
                Path.Combine(app, "bin", "Release", "net10.0", "PackageConsumer.dll"), RedisServer.FreePort().ToString(), RedisServer.FreePort().ToString());

            Assert.Contains(ExpectedLine, output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
            DeleteFromGlobalPackages(packable, version);
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Every project that declares itself a package, relative to the repository root.</summary>
    private static string[] PackableProjects(string root) =>
        Directory.EnumerateFiles(root, "*.csproj", SearchOption.AllDirectories)
            .Where(p => !p.Contains("/bin/", StringComparison.Ordinal) && !p.Contains("/obj/", StringComparison.Ordinal))
            .Where(p => File.ReadAllText(p).Contains("<IsPackable>true</IsPackable>", StringComparison.Ordinal))
            .Select(p => Path.GetRelativePath(root, p))
            .Order(StringComparer.Ordinal)
            .ToArray();

    private static void WriteConsumerApp(string work, string app, string feed, string version)
    {
        Directory.CreateDirectory(app);
        // Empty MSBuild files stop the search upwards, so nothing of a checkout (central package versions) reaches the app.
        foreach (var name in new[] { "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props" })
        {
            File.WriteAllText(Path.Combine(work, name), "<Project />\n");
        }

        File.WriteAllText(Path.Combine(work, "NuGet.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="packed-now" value="{feed}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(app, "PackageConsumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="SessionGrains.Grains" Version="{version}" />
                <PackageReference Include="SessionGrains.Client" Version="{version}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), $$"""
            using Microsoft.Extensions.DependencyInjection;
            using Microsoft.Extensions.Hosting;
            using Microsoft.Extensions.Logging;
            using Orleans.Hosting;
            using SessionGrains;

            var builder = Host.CreateApplicationBuilder(args);
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.UseOrleans(silo => silo.UseLocalhostClustering(int.Parse(args[0]), int.Parse(args[1])).AddSessionGrains());
            builder.Services.AddSessionStore();
            using var host = builder.Build();
            await host.StartAsync();
            var store = host.Services.GetRequiredService<ISessionStore>();
            var created = await store.CreateAsync("user-1");
            var session = await store.ValidateAsync(created.Token.Value);
            Console.WriteLine(session?.UserId == "user-1" ? "{{ExpectedLine}}" : "the new session did not validate");
            await host.StopAsync();
            return session?.UserId == "user-1" ? 0 : 1;
            """);
    }

    /// <summary>Runs dotnet with a time limit; a failure or a time-out fails the test with everything dotnet printed.</summary>
    private static async Task<string> RunDotnetAsync(string directory, TimeSpan limit, params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        if (arguments[0] is "pack" or "build")
        {
            // No build nodes or compiler server outlive the test (they would also hold its output pipes open).
            start.ArgumentList.Add("-nodeReuse:false");
            start.ArgumentList.Add("-p:UseSharedCompilation=false");
        }

        // What the test host's own dotnet set for itself must not steer the child's MSBuild.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(name);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";

        var output = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(output, e.Data);
        var watch = Stopwatch.StartNew();
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(limit);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"dotnet {arguments[0]} did not finish within {limit.TotalMinutes} minutes. Its output:\n{Snapshot(output)}");
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"dotnet {arguments[0]}: {watch.Elapsed.TotalSeconds:F0} s");
        Assert.True(process.ExitCode == 0, $"dotnet {string.Join(' ', arguments)} exited with {process.ExitCode}. Its output:\n{Snapshot(output)}");
        return Snapshot(output);
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is not null)
        {
            lock (output)
            {
                output.AppendLine(line);
            }
        }
    }

    private static string Snapshot(StringBuilder output)
    {
        lock (output)
        {
            return output.ToString();
        }
    }

    /// <summary>The packages restored for this run's one-off version: each run would otherwise leave a copy behind.</summary>
    private static void DeleteFromGlobalPackages(IEnumerable<string> projects, string version)
    {
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured
            ? configured
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        foreach (var project in projects)
        {
            var id = Path.Combine(packages, "sessiongrains." + Path.GetFileNameWithoutExtension(project).ToLowerInvariant());
            if (Directory.Exists(Path.Combine(id, version)))
            {
                Directory.Delete(Path.Combine(id, version), recursive: true);
            }

            if (Directory.Exists(id) && !Directory.EnumerateFileSystemEntries(id).Any())
            {
                Directory.Delete(id);
            }
        }
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "SessionGrains.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("SessionGrains.sln was not found above the test output.");
    }
}
