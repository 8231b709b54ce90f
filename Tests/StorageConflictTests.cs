using System.Collections.Immutable;
using System.Text.Json;
using System.Text.Json.Nodes;
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
        var key = Cluster.SessionKey(created.Session.SessionId);

        // Another activation (say, on a silo that was thought dead) wrote version 2 with metadata "x".
        var stored = JsonNode.Parse((string)(await Cluster.Redis!.Database.HashGetAsync(key, "data"))!)!;
        stored["session"]!["version"] = 2;
        stored["session"]!["metadata"] = new JsonObject { ["x"] = "from the other activation" };
        await Cluster.Redis.Database.HashSetAsync(key, [new("etag", "foreign-etag"), new("data", stored.ToJsonString())]);

        var updated = await Cluster.Store.UpdateAsync(created.Token.Value, new SessionUpdate
        {
            Metadata = ImmutableDictionary<string, string?>.Empty.Add("y", "from this one"),
        }, cancellationToken: Ct);

        Assert.Equal(3, updated!.Version);
        Assert.Equal("from the other activation", updated.Metadata["x"]);
        Assert.Equal("from this one", updated.Metadata["y"]);
        var reread = JsonDocument.Parse((string)(await Cluster.Redis.Database.HashGetAsync(key, "data"))!).RootElement;
        Assert.Equal(3, reread.GetProperty("session").GetProperty("version").GetInt64());
    }

    [Fact]
    public async Task An_update_whose_expected_version_was_overtaken_by_a_foreign_write_is_a_conflict()
    {
        var created = await Cluster.Store.CreateAsync("conflict-" + Guid.NewGuid().ToString("N")[..8], cancellationToken: Ct);
        var key = Cluster.SessionKey(created.Session.SessionId);
        var stored = JsonNode.Parse((string)(await Cluster.Redis!.Database.HashGetAsync(key, "data"))!)!;
        stored["session"]!["version"] = 2;
        await Cluster.Redis.Database.HashSetAsync(key, [new("etag", "foreign-etag"), new("data", stored.ToJsonString())]);

        var conflict = await Assert.ThrowsAsync<SessionVersionConflictException>(() =>
            Cluster.Store.UpdateAsync(created.Token.Value, new SessionUpdate { Role = "late" }, expectedVersion: 1, Ct));

        Assert.Equal(2, conflict.ActualVersion);
    }
}
