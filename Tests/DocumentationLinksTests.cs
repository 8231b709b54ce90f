using System.Text;
using System.Text.RegularExpressions;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>
/// The README links to pages that hold what it leaves out (benchmarks, design, operations); a moved or renamed
/// page or heading must not leave a reader at a dead link.
/// </summary>
public sealed partial class DocumentationLinksTests
{
    [Fact]
    public void Every_relative_link_in_the_repository_markdown_pages_leads_to_an_existing_file_and_heading()
    {
        var pages = MarkdownPages(RepositoryDirectory.Root).ToList();

        Assert.Contains(pages, page => Path.GetRelativePath(RepositoryDirectory.Root, page) == "README.md");
        Assert.Contains(pages, page => RelativeLinks(page).Any());
        Assert.Empty(BrokenLinks(RepositoryDirectory.Root, pages));
    }

    [Fact]
    public void A_missing_page_and_a_missing_heading_are_reported_and_working_links_are_not()
    {
        var folder = Directory.CreateTempSubdirectory("sessiongrains-doclinks-");
        try
        {
            Directory.CreateDirectory(Path.Combine(folder.FullName, "docs"));
            File.WriteAllText(Path.Combine(folder.FullName, "docs", "design.md"), "# How it works\n\n## Scale-out: three `silos`\n\n## Notes\n\n## Notes\n");
            var readme = Path.Combine(folder.FullName, "README.md");
            File.WriteAllText(readme, """
                # Title

                See [design](docs/design.md#scale-out-three-silos), [the second notes](docs/design.md#notes-1),
                [a folder](docs/), [this page](#title), [the web](https://example.org/missing.md) and `[code](nowhere.md)`.
                Broken: [gone](docs/gone.md) and [no heading](docs/design.md#scale-run).

                ```
                [in a code block](nowhere.md)
                ```
                """);

            var broken = BrokenLinks(folder.FullName, MarkdownPages(folder.FullName).ToList());

            Assert.Equal(["README.md:5: docs/gone.md (no such file)", "README.md:5: docs/design.md#scale-run (no such heading)"], broken);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    private static List<string> BrokenLinks(string root, IReadOnlyList<string> pages)
    {
        var broken = new List<string>();
        foreach (var page in pages)
        {
            foreach (var (line, target) in RelativeLinks(page))
            {
                var hash = target.IndexOf('#', StringComparison.Ordinal);
                var path = Uri.UnescapeDataString(hash < 0 ? target : target[..hash]);
                var anchor = hash < 0 ? null : target[(hash + 1)..];
                var destination = path.Length == 0 ? page : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(page)!, path));
                var where = $"{Path.GetRelativePath(root, page).Replace('\\', '/')}:{line}: {target}";
                if (!File.Exists(destination) && !Directory.Exists(destination))
                {
                    broken.Add(where + " (no such file)");
                }
                else if (anchor is not null && destination.EndsWith(".md", StringComparison.OrdinalIgnoreCase) && !HeadingAnchors(destination).Contains(anchor))
                {
                    broken.Add(where + " (no such heading)");
                }
            }
        }

        return broken;
    }

    private static IEnumerable<string> MarkdownPages(string root) =>
        Directory.EnumerateFiles(root, "*.md", SearchOption.AllDirectories)
            .Where(file => !Path.GetRelativePath(root, file).Split(Path.DirectorySeparatorChar)
                .Any(part => part is "bin" or "obj" or ".git" or "TestResults" or "node_modules"))
            .Order(StringComparer.Ordinal);

    private static IEnumerable<(int Line, string Target)> RelativeLinks(string page)
    {
        foreach (var (number, text) in LinesOutsideCodeBlocks(page))
        {
            foreach (Match link in LinkTarget().Matches(CodeSpan().Replace(text, "")))
            {
                var target = link.Groups["target"].Value;
                if (!UrlScheme().IsMatch(target))
                {
                    yield return (number, target);
                }
            }
        }
    }

    /// <summary>The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens, repeats numbered.</summary>
    private static HashSet<string> HeadingAnchors(string page)
    {
        var anchors = new HashSet<string>(StringComparer.Ordinal);
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (_, text) in LinesOutsideCodeBlocks(page))
        {
            var heading = Heading().Match(text);
            if (!heading.Success)
            {
                continue;
            }

            var slug = new StringBuilder();
            foreach (var c in LinkText().Replace(heading.Groups["text"].Value, "${text}").ToLowerInvariant())
            {
                if (char.IsLetterOrDigit(c) || c is '-' or '_')
                {
                    slug.Append(c);
                }
                else if (c == ' ')
                {
                    slug.Append('-');
                }
            }

            var anchor = slug.ToString();
            var repeats = seen.GetValueOrDefault(anchor);
            seen[anchor] = repeats + 1;
            anchors.Add(repeats == 0 ? anchor : $"{anchor}-{repeats}");
        }

        return anchors;
    }

    private static IEnumerable<(int Number, string Text)> LinesOutsideCodeBlocks(string page)
    {
        var inCodeBlock = false;
        var number = 0;
        foreach (var text in File.ReadLines(page))
        {
            number++;
            if (text.TrimStart().StartsWith("```", StringComparison.Ordinal))
            {
                inCodeBlock = !inCodeBlock;
            }
            else if (!inCodeBlock)
            {
                yield return (number, text);
            }
        }
    }

    [GeneratedRegex(@"\]\((?<target>[^)\s]+)(?:\s+""[^""]*"")?\)")]
    private static partial Regex LinkTarget();

    [GeneratedRegex("`[^`]*`")]
    private static partial Regex CodeSpan();

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9+.-]*:")]
    private static partial Regex UrlScheme();

    [GeneratedRegex(@"^#{1,6}\s+(?<text>.*?)\s*#*\s*$")]
    private static partial Regex Heading();

    [GeneratedRegex(@"\[(?<text>[^\]]*)\]\([^)]*\)")]
    private static partial Regex LinkText();
}
