using SessionGrains.Tests.Infrastructure;
using StackExchange.Redis;

namespace SessionGrains.Tests;

/// <summary>
/// Creates store without reading or activating; expiry checks come from buckets (one reminder per bucket, not
/// per session), re-file a session still in use, and end it once it has expired.
/// </summary>
public sealed class ExpiryBucketTests(RedisServer redis)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Creating_sessions_neither_reads_nor_activates_them_and_files_them_under_a_few_reminders()
    {
        await using var cluster = await SessionCluster.StartAsync(redis, 1);
        using var metrics = new MetricRecorder(cluster.Cluster.Silos.Select(s => s.ServiceProvider));
        var options = new SessionCreateOptions { IdleTimeout = TimeSpan.FromMinutes(10) };

        var created = new List<CreatedSession>();
        for (var user = 0; user < 20; user++)
        {
            created.AddRange(await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => cluster.Store.CreateAsync($"bucket-user-{user}", options, Ct))));
        }

        Assert.Equal(0, metrics.Total("sessiongrains.storage.operations", "operation=read", "storage=" + StorageNames.Sessions));
        Assert.Equal(200, metrics.Total("sessiongrains.storage.operations", "operation=write", "storage=" + StorageNames.Sessions));
        Assert.Equal(0, await cluster.SessionActivationsAsync());

        // 200 sessions due within a second or two of each other: at most 16 shards of 2-3 one-second buckets.
        var reminders = await ReminderCountAsync(cluster, atLeast: 1);
        Assert.InRange(reminders, 1, 3 * 16);

        // The first use reads the stored session once and keeps it in memory.
        Assert.NotNull(await cluster.Store.ValidateAsync(created[0].Token.Value, cancellationToken: Ct));
        Assert.NotNull(await cluster.Store.ValidateAsync(created[0].Token.Value, cancellationToken: Ct));
        Assert.Equal(1, metrics.Total("sessiongrains.storage.operations", "operation=read", "storage=" + StorageNames.Sessions));
        Assert.Equal(1, await cluster.SessionActivationsAsync());
    }

    [Fact]
    public async Task A_bucket_refiles_a_session_still_in_use_and_a_later_bucket_ends_it_once_expired()
    {
        await using var cluster = await SessionCluster.StartAsync(redis, 1);
        var user = "refile-user";
        var created = await cluster.Store.CreateAsync(user, new SessionCreateOptions { IdleTimeout = TimeSpan.FromSeconds(2) }, Ct);
        var key = cluster.SessionKey(created.Session.SessionId);

        // Used before its first expiry: the bucket due about 2 s after create finds it live and files it again.
        cluster.Time.Advance(TimeSpan.FromSeconds(1.5));
        Assert.NotNull(await cluster.Store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
        await Task.Delay(TimeSpan.FromSeconds(4), Ct);
        Assert.True(await redis.Database.KeyExistsAsync(key), "a bucket check ended a session that was still live");
        Assert.Equal(1, await cluster.Store.CountForUserAsync(user, Ct));

        // Now it expires; only the bucket it was re-filed in can clean it up.
        cluster.Time.Advance(TimeSpan.FromSeconds(5));
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (await redis.Database.KeyExistsAsync(key) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200, Ct);
        }

        Assert.False(await redis.Database.KeyExistsAsync(key), "the re-filed expiry check did not end the session");
        Assert.Empty((await cluster.Store.ListByUserAsync(user, cancellationToken: Ct)).Sessions);
    }

    /// <summary>Rows of this cluster's reminder table (one sorted set in Redis), once at least <paramref name="atLeast"/> are there.</summary>
    private async Task<long> ReminderCountAsync(SessionCluster cluster, int atLeast)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            long rows = 0;
            await foreach (var key in redis.Server.KeysAsync(pattern: "*" + cluster.ServiceId + "*reminder*"))
            {
                rows += await redis.Database.SortedSetLengthAsync(key);
            }

            if (rows >= atLeast || DateTime.UtcNow > deadline)
            {
                return rows;
            }

            await Task.Delay(200, Ct);
        }
    }
}
