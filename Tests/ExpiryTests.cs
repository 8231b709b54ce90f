using Microsoft.Extensions.DependencyInjection;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>Idle and absolute expiry, exact on every read; cleanup by expiry buckets; the storage TTL backstop.</summary>
[Collection(RedisClusterCollection.Name)]
public sealed class ExpiryTests(RedisClusterFixture fixture)
{
    private SessionCluster Cluster => fixture.Cluster;

    private ISessionStore Store => Cluster.Store;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string NewUser() => "user-" + Guid.NewGuid().ToString("N")[..12];

    [Fact]
    public async Task A_session_is_live_until_one_millisecond_before_its_idle_expiry_and_gone_at_it()
    {
        var created = await Store.CreateAsync(NewUser(), new SessionCreateOptions { IdleTimeout = TimeSpan.FromSeconds(2) }, Ct);

        Cluster.Time.Advance(TimeSpan.FromSeconds(2) - TimeSpan.FromMilliseconds(1));
        var justBefore = await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct);
        Assert.NotNull(justBefore);

        Cluster.Time.Advance(TimeSpan.FromSeconds(2));
        Assert.Null(await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
    }

    [Fact]
    public async Task Sliding_keeps_a_used_session_alive_past_its_first_idle_window()
    {
        var created = await Store.CreateAsync(NewUser(), new SessionCreateOptions { IdleTimeout = TimeSpan.FromSeconds(10) }, Ct);
        for (var i = 0; i < 5; i++)
        {
            Cluster.Time.Advance(TimeSpan.FromSeconds(6));
            Assert.NotNull(await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
        }

        Cluster.Time.Advance(TimeSpan.FromSeconds(10));
        Assert.Null(await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
    }

    [Fact]
    public async Task The_absolute_lifetime_ends_a_session_however_much_it_is_used()
    {
        var created = await Store.CreateAsync(NewUser(), new SessionCreateOptions
        {
            IdleTimeout = TimeSpan.FromSeconds(10),
            AbsoluteTimeout = TimeSpan.FromSeconds(25),
        }, Ct);

        for (var elapsed = 0; elapsed < 24; elapsed += 8)
        {
            Cluster.Time.Advance(TimeSpan.FromSeconds(8));
            Assert.NotNull(await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
        }

        Cluster.Time.Advance(TimeSpan.FromSeconds(1) - TimeSpan.FromMilliseconds(1)); // 24.999 s
        Assert.NotNull(await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
        Cluster.Time.Advance(TimeSpan.FromMilliseconds(1)); // 25 s
        Assert.Null(await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
    }

    [Fact]
    public async Task Expired_sessions_answer_not_found_to_every_operation_and_leave_the_list()
    {
        var user = NewUser();
        var live = await Store.CreateAsync(user, cancellationToken: Ct);
        var expiring = await Store.CreateAsync(user, new SessionCreateOptions { IdleTimeout = TimeSpan.FromSeconds(2) }, Ct);

        Cluster.Time.Advance(TimeSpan.FromSeconds(2));

        Assert.Null(await Store.UpdateAsync(expiring.Token.Value, new SessionUpdate { Role = "x" }, cancellationToken: Ct));
        Assert.Null(await Store.RotateAsync(expiring.Token.Value, cancellationToken: Ct));
        Assert.False(await Store.DeleteAsync(expiring.Token.Value, Ct));
        Assert.False(await Store.RevokeAsync(user, expiring.Session.SessionId, Ct));
        var listed = await Store.ListByUserAsync(user, cancellationToken: Ct);
        Assert.Equal([live.Session.SessionId], listed.Sessions.Select(s => s.SessionId));
        Assert.Equal(1, await Store.CountForUserAsync(user, Ct));
    }

    [Fact]
    public async Task The_index_keeps_a_session_that_slid_past_the_index_estimate()
    {
        var user = NewUser();
        var created = await Store.CreateAsync(user, new SessionCreateOptions { IdleTimeout = TimeSpan.FromSeconds(100) }, Ct);

        // 5 s < a tenth of the idle timeout: the slide stays in the grain's memory, the index is not told.
        Cluster.Time.Advance(TimeSpan.FromSeconds(95));
        Assert.NotNull(await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
        Cluster.Time.Advance(TimeSpan.FromSeconds(10));

        var listed = await Store.ListByUserAsync(user, cancellationToken: Ct);
        Assert.Equal([created.Session.SessionId], listed.Sessions.Select(s => s.SessionId));
    }

    [Fact]
    public async Task The_last_access_is_written_lazily_once_a_tenth_of_the_idle_timeout_has_passed()
    {
        // The grain's own rule, so every validation reaches it (NearCacheTests has the cache's writes).
        var store = Cluster.UncachedStore;
        var created = await store.CreateAsync(NewUser(), new SessionCreateOptions { IdleTimeout = TimeSpan.FromSeconds(100) }, Ct);
        var key = Cluster.SessionKey(created.Session.SessionId);
        var stored = await Cluster.Redis!.Database.StringGetAsync(key);

        Cluster.Time.Advance(TimeSpan.FromSeconds(5));
        await store.ValidateAsync(created.Token.Value, cancellationToken: Ct);
        Assert.Equal(stored, await Cluster.Redis.Database.StringGetAsync(key));

        Cluster.Time.Advance(TimeSpan.FromSeconds(6));
        await store.ValidateAsync(created.Token.Value, cancellationToken: Ct);
        Assert.NotEqual(stored, await Cluster.Redis.Database.StringGetAsync(key));
    }

    [Fact]
    public async Task The_stored_session_key_carries_a_ttl_at_its_absolute_expiry_plus_the_margin()
    {
        var created = await Store.CreateAsync(NewUser(), new SessionCreateOptions { AbsoluteTimeout = TimeSpan.FromHours(1) }, Ct);

        var ttl = await Cluster.Redis!.Database.KeyTimeToLiveAsync(Cluster.SessionKey(created.Session.SessionId));
        var indexTtl = await Cluster.Redis.Database.KeyTimeToLiveAsync(Cluster.IndexKey(created.Session.UserId));

        var expected = TimeSpan.FromHours(1) + new SessionGrainsOptions().StorageExpiryMargin;
        Assert.NotNull(ttl);
        Assert.InRange(ttl.Value, expected - TimeSpan.FromSeconds(30), expected);
        Assert.NotNull(indexTtl);
        Assert.InRange(indexTtl.Value, expected - TimeSpan.FromSeconds(30), expected);
    }

    [Fact]
    public async Task The_expiry_bucket_removes_the_stored_keys_and_the_index_entry()
    {
        // A cluster of its own: on the shared one, other tests move the grains' clock by minutes, so a bucket they armed
        // (its reminder runs on the real clock) can have the same due second as this session and fire minutes late.
        await using var own = await SessionCluster.StartAsync(fixture.Redis, silos: 1);
        var user = NewUser();
        var keep = await own.Store.CreateAsync(user, cancellationToken: Ct);
        var countBefore = await own.Store.CountAsync(Ct);
        var expiring = await own.Store.CreateAsync(user, new SessionCreateOptions { IdleTimeout = TimeSpan.FromSeconds(2) }, Ct);

        // Expire the session on the grains' clock at once: a bucket firing first would find it live and retry a minute later.
        own.Time.Advance(TimeSpan.FromSeconds(3));
        var sessionKey = own.SessionKey(expiring.Session.SessionId);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (await own.Redis!.Database.KeyExistsAsync(sessionKey) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200, Ct);
        }

        Assert.False(await own.Redis.Database.KeyExistsAsync(sessionKey), "the expiry bucket did not clear the stored session: " + await BucketAsync(own, expiring.Session));

        // The index learned it from the session itself (no read-time pruning needed): the stored index lost the entry.
        deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await own.StoredIndexAsync(user))!.Sessions.ContainsKey(expiring.Session.SessionId) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, Ct);
        }

        var index = (await own.StoredIndexAsync(user))!.Sessions.Keys;
        Assert.DoesNotContain(expiring.Session.SessionId, index);
        Assert.Contains(keep.Session.SessionId, index);
        Assert.Equal(1, await own.Store.CountForUserAsync(user, Ct));
        Assert.Equal(countBefore, await own.Store.CountAsync(Ct));
    }

    /// <summary>What a failure needs to be understood: the session's bucket and its reminder, against both clocks.</summary>
    private static async Task<string> BucketAsync(SessionCluster cluster, SessionInfo session)
    {
        var bucket = SessionExpiryBuckets.KeyOf(session.SessionId, session.ExpiresAt, TimeSpan.FromSeconds(1));
        var reminders = cluster.Cluster.Silos[0].ServiceProvider.GetRequiredService<Orleans.IReminderTable>();
        var reminder = await reminders.ReadRow(GrainId.Create(SiloGrainTypeNames.ExpiryBucket, bucket), "due");
        return $"grains' clock {cluster.Time.GetUtcNow():O}, real clock {DateTimeOffset.UtcNow:O}, session expires {session.ExpiresAt:O} in bucket {bucket}, "
            + $"whose reminder starts {reminder?.StartAt:O} every {reminder?.Period}";
    }

    [Fact]
    public async Task Ending_a_session_deletes_its_key_and_an_empty_index_deletes_its_own()
    {
        var user = NewUser();
        var created = await Store.CreateAsync(user, cancellationToken: Ct);
        Assert.True(await Cluster.Redis!.Database.KeyExistsAsync(Cluster.IndexKey(user)));

        await Store.DeleteAsync(created.Token.Value, Ct);

        Assert.False(await Cluster.Redis.Database.KeyExistsAsync(Cluster.SessionKey(created.Session.SessionId)));
        Assert.False(await Cluster.Redis.Database.KeyExistsAsync(Cluster.IndexKey(user)));
    }
}
