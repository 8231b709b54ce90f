using System.Diagnostics;
using System.Net;
using SessionGrains.Tests.Infrastructure;
using StackExchange.Redis;

namespace SessionGrains.Tests;

/// <summary>Storage, clustering and reminders on a Redis Cluster (3 primaries, 3 replicas), through real silo processes.</summary>
[Trait("Category", "Faults")]
[Collection(FaultCollection.Name)]
public sealed class RedisClusterModeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_core_behaviours_work_on_a_redis_cluster()
    {
        var nodes = new List<RedisServer>();
        try
        {
            for (var i = 0; i < 6; i++)
            {
                var node = new RedisServer(new RedisServerSettings(ExtraArguments: ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"]));
                await node.InitializeAsync();
                nodes.Add(node);
            }

            await CreateClusterAsync(nodes);
            var configuration = string.Join(",", nodes.Take(3).Select(n => $"127.0.0.1:{n.Port}"));
            await using var cluster = await LocalCluster.StartAsync(configuration, 2);
            await using var admin = await ConnectionMultiplexer.ConnectAsync(configuration);
            var redis = admin.GetDatabase();
            var store = cluster.Store;

            var user = "cluster-user";
            var first = await store.CreateAsync(user, cancellationToken: Ct);
            var second = await store.CreateAsync(user, new SessionCreateOptions { IdleTimeout = TimeSpan.FromSeconds(2) }, Ct);
            Assert.NotNull(await store.ValidateAsync(first.Token.Value, cancellationToken: Ct));
            var updated = await store.UpdateAsync(first.Token.Value, new SessionUpdate { Role = "admin" }, expectedVersion: 1, Ct);
            Assert.Equal(2, updated!.Version);
            var rotated = await store.RotateAsync(first.Token.Value, cancellationToken: Ct);
            Assert.Null(await store.ValidateAsync(first.Token.Value, cancellationToken: Ct));
            Assert.Equal("admin", (await store.ValidateAsync(rotated!.Token.Value, cancellationToken: Ct))!.Role);

            // Stored across the cluster's slots, each key with its TTL backstop.
            var sessionKey = $"{cluster.ServiceId}/s/{rotated.Session.SessionId}";
            Assert.True(await redis.KeyExistsAsync(sessionKey));
            Assert.NotNull(await redis.KeyTimeToLiveAsync(sessionKey));

            // The expiry bucket cleans up the 2-second session: its key and its index entry go.
            var expiredKey = $"{cluster.ServiceId}/s/{second.Session.SessionId}";
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (await redis.KeyExistsAsync(expiredKey) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(250, Ct);
            }

            Assert.False(await redis.KeyExistsAsync(expiredKey), "the expiry bucket did not run on the Redis Cluster");
            Assert.Equal([rotated.Session.SessionId], (await store.ListByUserAsync(user, cancellationToken: Ct)).Sessions.Select(s => s.SessionId));
            Assert.Equal(1, await store.CountForUserAsync(user, Ct));

            Assert.True(await store.RevokeAsync(user, rotated.Session.SessionId, Ct));
            var others = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => store.CreateAsync(user, cancellationToken: Ct)));
            Assert.Equal(4, await store.DeleteAllForUserAsync(user, others[0].Session.SessionId, Ct));
            Assert.True(await store.DeleteAsync(others[0].Token.Value, Ct));
            Assert.Equal(0, await store.CountForUserAsync(user, Ct));
            Assert.Equal(HttpStatusCode.OK, (await cluster.Silos[0].Http.GetAsync("/health", Ct)).StatusCode);

            // Session events: appended right after each index write here (a script cannot reach the stream's slot), every one there, in order.
            var events = new List<SessionEvent>();
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct))
            {
                timeout.CancelAfter(TimeSpan.FromSeconds(20));
                await foreach (var e in store.SubscribeAsync(user, SessionEvent.Beginning, timeout.Token))
                {
                    events.Add(e);
                    if (events.Count == 15)
                    {
                        break;
                    }
                }
            }

            // 7 created, 1 rotated, 7 ended (the expired one, the revoked one, 4 signed out everywhere, the last logged out).
            Assert.Equal(7, events.Count(e => e.Kind == SessionEventKind.Created));
            Assert.Equal(rotated.Session.SessionId, Assert.Single(events, e => e.Kind == SessionEventKind.Rotated).SessionId);
            Assert.Equal(
                [SessionEndReason.Expired, SessionEndReason.Revoked, SessionEndReason.RevokedAll, SessionEndReason.RevokedAll, SessionEndReason.RevokedAll, SessionEndReason.RevokedAll, SessionEndReason.Deleted],
                events.Where(e => e.Kind == SessionEventKind.Ended).Select(e => e.EndReason!.Value));
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }
        }
    }

    private static async Task CreateClusterAsync(IReadOnlyList<RedisServer> nodes)
    {
        var start = new ProcessStartInfo(RedisServer.FindExecutable("redis-cli"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "--cluster", "create" }.Concat(nodes.Select(n => $"127.0.0.1:{n.Port}")).Concat(["--cluster-replicas", "1", "--cluster-yes"]))
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync(Ct);
        await process.WaitForExitAsync(Ct);
        Assert.True(process.ExitCode == 0, output);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        foreach (var node in nodes)
        {
            while (!(await node.Server.ExecuteAsync("CLUSTER", "INFO")).ToString()!.Contains("cluster_state:ok", StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline, "the Redis Cluster did not reach cluster_state:ok");
                await Task.Delay(200, Ct);
            }
        }
    }
}
