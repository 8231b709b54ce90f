using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>The cached grain references address exactly the grains Orleans' own GetGrain would.</summary>
[Collection(RedisClusterCollection.Name)]
public sealed class GrainReferencesTests(RedisClusterFixture fixture)
{
    [Fact]
    public void Cached_references_match_orleans_own_for_every_grain_the_store_calls()
    {
        var grains = fixture.Cluster.Grains;
        foreach (var key in new[] { "a", "user-42", "GLkI-KT6_x", "1764000000/3" })
        {
            Assert.Equal(grains.GetGrain<ISessionGrain>(key).GetGrainId(), grains.Session(key).GetGrainId());
            Assert.Equal(grains.GetGrain<IUserSessionsGrain>(key).GetGrainId(), grains.UserSessions(key).GetGrainId());
            Assert.Equal(grains.GetGrain<ISessionLifecycleGrain>(key).GetGrainId(), grains.SessionLifecycle(key).GetGrainId());
            Assert.Equal(grains.GetGrain<ISessionExpiryBucketGrain>(key).GetGrainId(), grains.ExpiryBucket(key).GetGrainId());
        }

        Assert.Throws<ArgumentException>(() => grains.Session(" "));
    }
}
