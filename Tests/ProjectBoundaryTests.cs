namespace SessionGrains.Tests;

/// <summary>The project boundaries hold in the built assemblies, not only in the project files.</summary>
public sealed class ProjectBoundaryTests
{
    [Fact]
    public void The_client_does_not_load_the_web_framework()
    {
        Assert.DoesNotContain(typeof(ISessionStore).Assembly.GetReferencedAssemblies(),
            reference => reference.Name!.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal));
    }

    [Fact]
    public void Grain_code_cannot_reach_a_token_type()
    {
        var tokens = typeof(SessionToken).Assembly.GetName().Name;
        Assert.DoesNotContain(typeof(ISessionGrain).Assembly.GetReferencedAssemblies(), reference => reference.Name == tokens);
        Assert.DoesNotContain(typeof(SessionGrain).Assembly.GetReferencedAssemblies(), reference => reference.Name == tokens);
    }

    [Fact]
    public void Calls_only_silos_make_are_not_public()
    {
        Assert.False(typeof(ISessionLifecycleGrain).IsPublic);
        Assert.False(typeof(ISessionExpiryBucketGrain).IsPublic);
        Assert.DoesNotContain(typeof(ISessionGrain).GetMethods(), method => typeof(ISessionLifecycleGrain).GetMethod(method.Name) is not null);
    }
}
