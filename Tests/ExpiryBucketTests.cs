using SessionGrains.Tests.Infrastructure;
using StackExchange.Redis;

namespace SessionGrains.Tests;

/// <summary>
/// Creates store without reading or activating; expiry checks come from buckets (one reminder per bucket, not
/// per session, each batch of filed sessions written once as a page), re-file a session still in use, and end
/// it once it has expired.
/// </summary>
public sealed class ExpiryBucketTests(RedisServer redis)
{
    // Key patterns (after "{serviceId}/") of a bucket's stored entries: its record, its pages, or either.
    private const string BucketRecords = "b/*";
    private const string BucketPages = "p/*";
    private const string AnyBucketEntry = "[bp]/*";

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
        await WaitUntilAsync(async () => !await redis.Database.KeyExistsAsync(key), DateTime.UtcNow.AddSeconds(20));
        Assert.False(await redis.Database.KeyExistsAsync(key), "the re-filed expiry check did not end the session");
        Assert.Empty((await cluster.Store.ListByUserAsync(user, cancellationToken: Ct)).Sessions);

        // Both buckets are done: their records and pages are deleted, not left to the TTL backstop.
        await WaitUntilAsync(async () => (await BucketEntriesAsync(cluster, AnyBucketEntry)).Count == 0, DateTime.UtcNow.AddSeconds(10));
        Assert.Empty(await BucketEntriesAsync(cluster, AnyBucketEntry));
    }

    [Fact]
    public async Task A_bucket_writes_each_batch_of_filed_sessions_once_as_a_page_of_its_own()
    {
        await using var cluster = await SessionCluster.StartAsync(redis, 1);
        var options = new SessionCreateOptions { IdleTimeout = TimeSpan.FromMinutes(10) };
        async Task<string[]> CreateBatchAsync(string users) => (await Task.WhenAll(Enumerable.Range(0, 40)
            .Select(i => cluster.Store.CreateAsync($"{users}-{i % 4}", options, Ct)))).Select(c => c.Session.SessionId).ToArray();

        var first = await CreateBatchAsync("page-user-a");
        var firstPages = await PagesHoldingAsync(cluster, first);
        var second = await CreateBatchAsync("page-user-b");
        var pages = await PagesHoldingAsync(cluster, second);

        // A flush writes what was filed since the last one: the first batch's pages are untouched...
        Assert.All(firstPages, page => Assert.Equal(page.Value, pages[page.Key]));
        Assert.All(second, id => Assert.DoesNotContain(firstPages.Values, data => data.Contains(id, StringComparison.Ordinal)));

        // ...and every id is in exactly one page.
        Assert.All(first.Concat(second), id => Assert.Single(pages.Values, data => data.Contains(id, StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_bucket_stored_before_pages_existed_is_still_checked_and_then_deleted()
    {
        string serviceId;
        SessionTokenCodec tokens;
        CreatedSession created;
        await using (var first = await SessionCluster.StartAsync(redis, 1))
        {
            serviceId = first.ServiceId;
            tokens = first.Tokens;
            created = await first.Store.CreateAsync("legacy-bucket-user", new SessionCreateOptions { IdleTimeout = TimeSpan.FromSeconds(4) }, Ct);
            await PagesHoldingAsync(first, [created.Session.SessionId]);
        }

        // While no silo runs, store the bucket the way buckets were stored before pages: the ids in its record.
        var record = Assert.Single(await BucketEntriesAsync(serviceId, BucketRecords));
        var legacy = System.Text.Json.Nodes.JsonNode.Parse(record.Value)!.AsObject();
        legacy.Remove("pages");
        legacy["sessionIds"] = new System.Text.Json.Nodes.JsonArray(created.Session.SessionId);
        await StoredRecords.WriteJsonAsync(redis.Database, record.Key, legacy.ToJsonString());
        foreach (var page in await BucketEntriesAsync(serviceId, BucketPages))
        {
            await redis.Database.KeyDeleteAsync(page.Key);
        }

        // The restarted cluster's bucket fires, finds the session in its record, ends it and deletes itself.
        await using var second = await SessionCluster.StartAsync(redis, 1, serviceId: serviceId, tokens: tokens);
        second.Time.Advance(TimeSpan.FromSeconds(5));
        var key = second.SessionKey(created.Session.SessionId);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        await WaitUntilAsync(async () => !await redis.Database.KeyExistsAsync(key), deadline);
        await WaitUntilAsync(async () => (await BucketEntriesAsync(serviceId, AnyBucketEntry)).Count == 0, deadline);
        Assert.False(await redis.Database.KeyExistsAsync(key), "the bucket stored before pages did not end its session");
        Assert.Empty(await BucketEntriesAsync(serviceId, AnyBucketEntry));
        Assert.Empty((await second.Store.ListByUserAsync("legacy-bucket-user", cancellationToken: Ct)).Sessions);
    }

    [Fact]
    public async Task A_bucket_whose_page_another_activation_took_reloads_writes_the_next_page_and_cleans_up_both()
    {
        await using var cluster = await SessionCluster.StartAsync(redis, 1);
        var bucketKey = $"{DateTimeOffset.UtcNow.AddSeconds(8).ToUnixTimeSeconds()}/0";
        var bucket = cluster.Grains.ExpiryBucket(bucketKey);
        var recordKey = $"{cluster.ServiceId}/b/{bucketKey}";
        string PageKey(int number) => $"{cluster.ServiceId}/p/{bucketKey}/{number}";

        await bucket.AddAsync("no-such-session-1");
        await PagesHoldingAsync(cluster, ["no-such-session-1"]);

        // A flush writes its page first and counts it in the record after: wait for the count too (reading the
        // record as soon as the page showed found it not yet written, once in CI).
        System.Text.Json.Nodes.JsonNode? record = null;
        await WaitUntilAsync(async () =>
        {
            var data = await StoredRecords.JsonAsync(redis.Database, recordKey);
            record = data is null ? null : System.Text.Json.Nodes.JsonNode.Parse(data);
            return record?["pages"]?.GetValue<int>() == 1;
        }, DateTime.UtcNow.AddSeconds(10));
        Assert.Equal(1, record?["pages"]?.GetValue<int>());

        // Another activation of the bucket (a duplicate after a silo failure) wrote page 1 and counted it.
        record!["pages"] = 2;
        await StoredRecords.WriteJsonAsync(redis.Database, recordKey, record.ToJsonString());
        await StoredRecords.WriteJsonAsync(redis.Database, PageKey(1), "{\"sessionIds\":[\"no-such-session-foreign\"]}");

        // This activation's next flush finds page 1 taken: it reloads, writes page 2 and counts three pages.
        await bucket.AddAsync("no-such-session-2");
        var pages = await PagesHoldingAsync(cluster, ["no-such-session-2"]);
        Assert.Contains("no-such-session-2", pages[PageKey(2)], StringComparison.Ordinal);
        Assert.Contains("no-such-session-foreign", pages[PageKey(1)], StringComparison.Ordinal);
        Assert.Equal(3, System.Text.Json.Nodes.JsonNode.Parse((await StoredRecords.JsonAsync(redis.Database, recordKey))!)!["pages"]!.GetValue<int>());

        // When due it checks all three pages' sessions (none exists) and deletes every page, the foreign one too.
        await WaitUntilAsync(async () => (await BucketEntriesAsync(cluster, AnyBucketEntry)).Count == 0, DateTime.UtcNow.AddSeconds(20));
        Assert.Empty(await BucketEntriesAsync(cluster, AnyBucketEntry));
    }

    [Fact]
    public async Task A_page_written_but_never_counted_is_skipped_so_a_bucket_keeps_flushing_after_an_outage()
    {
        await using var cluster = await SessionCluster.StartAsync(redis, 1);
        var bucketKey = $"{DateTimeOffset.UtcNow.AddSeconds(30).ToUnixTimeSeconds()}/0";
        var bucket = cluster.Grains.ExpiryBucket(bucketKey);
        var recordKey = $"{cluster.ServiceId}/b/{bucketKey}";
        string PageKey(int number) => $"{cluster.ServiceId}/p/{bucketKey}/{number}";
        await bucket.AddAsync("no-such-session-1");
        await PagesHoldingAsync(cluster, ["no-such-session-1"]);

        // A page write that timed out while Redis was frozen and landed after: page 1 exists, the record counts one page.
        await StoredRecords.WriteJsonAsync(redis.Database, PageKey(1), "{\"sessionIds\":[\"no-such-session-2\"]}");

        // The next flush finds page 1 taken, and does not try it again: it writes page 2 (before, it retried page 1 forever).
        await bucket.AddAsync("no-such-session-2");
        await WaitUntilAsync(async () => (await BucketEntriesAsync(cluster, BucketPages)).ContainsKey(PageKey(2)), DateTime.UtcNow.AddSeconds(10));
        var pages = await BucketEntriesAsync(cluster, BucketPages);
        Assert.True(pages.ContainsKey(PageKey(2)), "the bucket did not write past the page it found taken");
        Assert.Contains("no-such-session-2", pages[PageKey(2)], StringComparison.Ordinal);
        Assert.Equal(3, System.Text.Json.Nodes.JsonNode.Parse((await StoredRecords.JsonAsync(redis.Database, recordKey))!)!["pages"]!.GetValue<int>());
    }

    /// <summary>The stored bucket entries (records or pages, by key pattern after the grain type) and their data.</summary>
    private Task<Dictionary<string, string>> BucketEntriesAsync(SessionCluster cluster, string pattern) =>
        BucketEntriesAsync(cluster.ServiceId, pattern);

    private async Task<Dictionary<string, string>> BucketEntriesAsync(string serviceId, string pattern)
    {
        var entries = new Dictionary<string, string>();
        await foreach (var key in redis.Server.KeysAsync(pattern: serviceId + "/" + pattern))
        {
            entries[key.ToString()] = (await StoredRecords.JsonAsync(redis.Database, key))!;
        }

        return entries;
    }

    /// <summary>The stored bucket pages, once every one of <paramref name="sessionIds"/> is in one (the flush is once a second).</summary>
    private async Task<Dictionary<string, string>> PagesHoldingAsync(SessionCluster cluster, IEnumerable<string> sessionIds)
    {
        Dictionary<string, string> pages = [];
        await WaitUntilAsync(async () =>
        {
            pages = await BucketEntriesAsync(cluster, BucketPages);
            return sessionIds.All(id => pages.Values.Any(data => data.Contains(id, StringComparison.Ordinal)));
        }, DateTime.UtcNow.AddSeconds(10));
        return pages;
    }

    /// <summary>Polls every 200 ms until <paramref name="done"/> says so or <paramref name="deadline"/> passes; the caller asserts.</summary>
    private static async Task WaitUntilAsync(Func<Task<bool>> done, DateTime deadline)
    {
        while (!await done() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200, Ct);
        }
    }

    /// <summary>Rows of this cluster's reminder table (one sorted set in Redis), once at least <paramref name="atLeast"/> are there.</summary>
    private async Task<long> ReminderCountAsync(SessionCluster cluster, int atLeast)
    {
        long rows = 0;
        await WaitUntilAsync(async () =>
        {
            rows = 0;
            await foreach (var key in redis.Server.KeysAsync(pattern: "*" + cluster.ServiceId + "*reminder*"))
            {
                rows += await redis.Database.SortedSetLengthAsync(key);
            }

            return rows >= atLeast;
        }, DateTime.UtcNow.AddSeconds(10));
        return rows;
    }
}
