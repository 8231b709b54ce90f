using System.Collections.Immutable;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>When another activation wrote first (etag conflict), a grain reloads and applies its change on top: no write is lost.</summary>
[Collection(RedisClusterCollection.Name)]
public sealed class StorageConflictTests(RedisClusterFixture fixture)
{
    private SessionCluster Cluster => fixture.Cluster;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_update_after_a_foreign_write_reloads_and_keeps_both_changes()
    {
        var created = await Cluster.Store.CreateAsync("conflict-" + Guid.NewGuid().ToString("N")[..8], cancellationToken: Ct);
        var id = created.Session.SessionId;

        // Another activation (say, on a silo that was thought dead) wrote version 2 with metadata "x".
        var stored = (await Cluster.StoredSessionAsync(id))!;
        stored.Session = stored.Session! with { Version = 2, Metadata = ImmutableDictionary<string, string>.Empty.Add("x", "from the other activation") };
        await Cluster.StoreForeignSessionAsync(id, stored);

        var updated = await Cluster.Store.UpdateAsync(created.Token.Value, new SessionUpdate
        {
            Metadata = ImmutableDictionary<string, string?>.Empty.Add("y", "from this one"),
        }, cancellationToken: Ct);

        Assert.Equal(3, updated!.Version);
        Assert.Equal("from the other activation", updated.Metadata["x"]);
        Assert.Equal("from this one", updated.Metadata["y"]);
        Assert.Equal(3, (await Cluster.StoredSessionAsync(id))?.Session?.Version);
    }

    [Fact]
    public async Task An_update_whose_expected_version_was_overtaken_by_a_foreign_write_is_a_conflict()
    {
        var created = await Cluster.Store.CreateAsync("conflict-" + Guid.NewGuid().ToString("N")[..8], cancellationToken: Ct);
        var stored = (await Cluster.StoredSessionAsync(created.Session.SessionId))!;
        stored.Session = stored.Session! with { Version = 2 };
        await Cluster.StoreForeignSessionAsync(created.Session.SessionId, stored);

        var conflict = await Assert.ThrowsAsync<SessionVersionConflictException>(() =>
            Cluster.Store.UpdateAsync(created.Token.Value, new SessionUpdate { Role = "late" }, expectedVersion: 1, Ct));

        Assert.Equal(2, conflict.ActualVersion);
    }
}
