using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
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
