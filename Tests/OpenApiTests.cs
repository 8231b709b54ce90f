using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>The served OpenAPI document describes the API the README documents, route by route and answer by answer.</summary>
public sealed partial class OpenApiTests
{
    private static readonly HashSet<string> StatusCodes = ["200", "201", "204", "400", "401", "403", "404", "409", "413", "429", "500", "503"];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Every_route_and_status_of_the_readme_api_table_is_in_the_served_document_which_needs_no_key()
    {
        await using var factory = SiloApiFactory.Create(null, ("SessionStore:ApiKey", "0123456789abcdef-test-key"));
        using var http = factory.CreateClient();
        using var response = await http.GetAsync("/openapi/v1.json", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement;
        var paths = document.GetProperty("paths");

        var rows = ReadmeApiRows();
        Assert.True(rows.Count >= 10, $"only {rows.Count} routes read from the README's API table");
        foreach (var (method, path, statuses) in rows)
        {
            Assert.True(paths.TryGetProperty(path, out var item), $"{path} is not in the OpenAPI document");
            Assert.True(item.TryGetProperty(method.ToLowerInvariant(), out var operation), $"{method} {path} is not in the OpenAPI document");
            Assert.True(operation.TryGetProperty("operationId", out _), $"{method} {path} has no name");
            var described = operation.GetProperty("responses").EnumerateObject().Select(r => r.Name).ToHashSet();
            Assert.All(statuses, status => Assert.True(described.Contains(status), $"{method} {path}: the README says {status}, the document does not"));
        }

        Assert.True(document.GetProperty("components").GetProperty("securitySchemes").TryGetProperty("X-Api-Key", out var scheme));
        Assert.Equal("header", scheme.GetProperty("in").GetString());
    }

    [Fact]
    public async Task The_document_marks_exactly_the_routes_that_need_no_key_as_open()
    {
        await using var factory = SiloApiFactory.Create(null, ("SessionStore:ApiKey", "0123456789abcdef-test-key"));
        using var http = factory.CreateClient();
        var paths = JsonDocument.Parse(await http.GetStringAsync("/openapi/v1.json", Ct)).RootElement.GetProperty("paths");

        foreach (var path in paths.EnumerateObject())
        {
            foreach (var operation in path.Value.EnumerateObject())
            {
                // An empty "security" overrides the document's API key requirement; the middleware must agree, request by request.
                var open = operation.Value.TryGetProperty("security", out var security) && security.GetArrayLength() == 0;
                Assert.Equal(path.Name.StartsWith("/health", StringComparison.Ordinal), open);
                var concrete = path.Name.Replace("{userId}", "u1", StringComparison.Ordinal).Replace("{sessionId}", "s1", StringComparison.Ordinal);
                using var request = new HttpRequestMessage(new HttpMethod(operation.Name.ToUpperInvariant()), concrete);
                using var response = await http.SendAsync(request, Ct);
                // Refused for want of a key: 401, or 429 once this caller has missed ten times.
                var refused = response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.TooManyRequests;
                Assert.True(open != refused, $"{operation.Name} {path.Name}: {(int)response.StatusCode}");
            }
        }
    }

    [Fact]
    public async Task The_headers_a_route_reads_itself_are_parameters_a_generated_client_sends()
    {
        await using var factory = SiloApiFactory.Create();
        using var http = factory.CreateClient();
        var paths = JsonDocument.Parse(await http.GetStringAsync("/openapi/v1.json", Ct)).RootElement.GetProperty("paths");
        Dictionary<string, bool> Headers(string path, string method) =>
            paths.GetProperty(path).GetProperty(method).TryGetProperty("parameters", out var parameters)
                ? parameters.EnumerateArray().Where(p => p.GetProperty("in").GetString() == "header")
                    .ToDictionary(p => p.GetProperty("name").GetString()!, p => p.TryGetProperty("required", out var r) && r.GetBoolean())
                : [];

        foreach (var (path, method) in new[] { ("/sessions/current", "get"), ("/sessions/current", "patch"), ("/sessions/current", "delete"), ("/sessions/current/rotate", "post") })
        {
            Assert.True(Headers(path, method).GetValueOrDefault("X-Session-Token"), $"{method} {path} does not require X-Session-Token");
        }

        Assert.Equal(new Dictionary<string, bool> { ["X-Client-IP"] = false, ["X-Client-User-Agent"] = false }, Headers("/sessions", "post"));
        Assert.False(Headers("/sessions/current", "get")["X-Client-IP"]);
        Assert.Empty(Headers("/stats", "get"));
    }

    [Fact]
    public async Task The_api_reference_ui_is_off_by_default()
    {
        await using var factory = SiloApiFactory.Create();
        using var http = factory.CreateClient();
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/scalar/", Ct)).StatusCode);
    }

    [Fact]
    public async Task With_the_setting_a_browser_shows_the_api_reference_served_by_the_silo_alone()
    {
        await using var silo = SiloApiFactory.Create(null, ("SessionStore:ApiReference", "true"), ("SessionStore:ApiKey", "0123456789abcdef-test-key"));
        silo.UseKestrel(0);
        silo.StartServer();
        var address = new Uri(silo.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await WebFrontendTests.LaunchChromiumAsync(playwright);
        var page = await (await browser.NewContextAsync(new() { BaseURL = address.ToString(), ViewportSize = new() { Width = 1280, Height = 900 } })).NewPageAsync();
        var elsewhere = new List<string>();
        page.Request += (_, request) =>
        {
            if (!request.Url.StartsWith(address.GetLeftPart(UriPartial.Authority), StringComparison.Ordinal) && !request.Url.StartsWith("data:", StringComparison.Ordinal))
            {
                elsewhere.Add(request.Url);
            }
        };
        await page.GotoAsync("/scalar/");
        try
        {
            // The route groups, read from the served document.
            await page.GetByText("Sessions (by token)").First.WaitForAsync(new() { Timeout = 30_000 });
            await page.GetByText("Users (by id)").First.WaitForAsync(new() { Timeout = 30_000 });
        }
        finally
        {
            await page.ScreenshotAsync(new() { Path = Path.Combine(WebFrontendTests.Screenshots, "api-reference.png") });
        }

        Assert.Empty(elsewhere);
    }

    /// <summary>(method, path, statuses) of each route in the README's HTTP API table.</summary>
    private static List<(string Method, string Path, string[] Statuses)> ReadmeApiRows()
    {
        var readme = File.ReadAllText(Path.Combine(RepositoryDirectory.Root, "README.md"));
        var table = readme[readme.IndexOf("## HTTP API", StringComparison.Ordinal)..];
        table = table[..table.IndexOf("\n\n", table.IndexOf("| route", StringComparison.Ordinal), StringComparison.Ordinal)];
        var rows = new List<(string, string, string[])>();
        foreach (var line in table.Split('\n').Where(l => l.StartsWith("| `", StringComparison.Ordinal)))
        {
            var cells = line.Split(" | ");
            var statuses = Regex.Matches(cells[1], @"\b\d{3}\b").Select(m => m.Value).Where(StatusCodes.Contains).Distinct().ToArray();
            string? method = null;
            foreach (var code in Regex.Matches(cells[0], "`([^`]+)`").Select(m => m.Groups[1].Value))
            {
                var route = Route().Match(code);
                if (route.Success)
                {
                    method = route.Groups["method"].Success ? route.Groups["method"].Value : method;
                    rows.Add((method!, route.Groups["path"].Value, statuses));
                }
            }
        }

        return rows;
    }

    [GeneratedRegex(@"^(?:(?<method>GET|POST|PATCH|PUT|DELETE) )?(?<path>/[^ ?]*)")]
    private static partial Regex Route();
}
