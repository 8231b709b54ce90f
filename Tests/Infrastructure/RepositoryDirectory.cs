namespace SessionGrains.Tests.Infrastructure;

/// <summary>The checkout the tests were built from, for tests that read files users read (docs, compose files).</summary>
public static class RepositoryDirectory
{
    /// <summary>The folder that holds <c>SessionGrains.sln</c>, found by walking up from the test output.</summary>
    public static string Root { get; } = Find();

    private static string Find()
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
