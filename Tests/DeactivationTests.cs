using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>Idle session grains, user indexes, expiry buckets and cache entries leave memory early, and keep what they hold when they do.</summary>
public sealed class DeactivationTests(RedisServer redis)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Idle_session_grains_deactivate_and_write_their_last_access_on_the_way_out()
    {
        await using var cluster = await SessionCluster.StartAsync(redis, 1, o => o.IdleSessionDeactivation = TimeSpan.FromSeconds(2),
            silo => silo.Configure<GrainCollectionOptions>(c => c.CollectionQuantum = TimeSpan.FromSeconds(1)));
        var created = await cluster.Store.CreateAsync("idle-user", new SessionCreateOptions { IdleTimeout = TimeSpan.FromMinutes(10) }, Ct);

        // A slide smaller than the lazy-write interval (1 minute here) stays in memory only...
        cluster.Time.Advance(TimeSpan.FromSeconds(30));
        var slid = await cluster.Store.ValidateAsync(created.Token.Value, cancellationToken: Ct);
        Assert.True(await cluster.SessionActivationsAsync() >= 1);

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (await cluster.SessionActivationsAsync() > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(250, Ct);
        }

        Assert.Equal(0, await cluster.SessionActivationsAsync());

        // ...and was written when the grain deactivated: the reactivated session still has it.
        var reloaded = await cluster.Store.ValidateAsync(created.Token.Value, cancellationToken: Ct);
        Assert.NotNull(reloaded);
        Assert.Equal(slid!.LastAccessedAt, created.Session.CreatedAt.AddSeconds(30));
        Assert.Equal(slid.LastAccessedAt, (await cluster.StoredSessionAsync(created.Session.SessionId))?.Session?.LastAccessedAt);
    }

    [Fact]
    public async Task Idle_user_indexes_and_expiry_buckets_deactivate_and_keep_their_entries()
    {
        await using var cluster = await SessionCluster.StartAsync(redis, 1, o => o.IdleSessionDeactivation = TimeSpan.FromSeconds(2),
            silo => silo.Configure<GrainCollectionOptions>(c => c.CollectionQuantum = TimeSpan.FromSeconds(1)));
        var options = new SessionCreateOptions { IdleTimeout = TimeSpan.FromMinutes(10) };
        var created = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => cluster.Store.CreateAsync("idle-index-user", options, Ct)));
        Assert.Equal(1, await cluster.ActivationsAsync(typeof(UserSessionsGrain)));

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while ((await cluster.ActivationsAsync(typeof(UserSessionsGrain)) > 0 || await cluster.ActivationsAsync(typeof(SessionExpiryBucketGrain)) > 0)
               && DateTime.UtcNow < deadline)
        {
            await Task.Delay(250, Ct);
        }

        Assert.Equal(0, await cluster.ActivationsAsync(typeof(UserSessionsGrain)));
        Assert.Equal(0, await cluster.ActivationsAsync(typeof(SessionExpiryBucketGrain)));

        // The index comes back from storage whole; the buckets wrote their entries (as pages) on the way out.
        var listed = (await cluster.Store.ListByUserAsync("idle-index-user", cancellationToken: Ct)).Sessions.Select(s => s.SessionId).Order();
        Assert.Equal(created.Select(c => c.Session.SessionId).Order(), listed);
        var buckets = new List<string>();
        await foreach (var key in redis.Server.KeysAsync(pattern: cluster.ServiceId + "/p/*"))
        {
            buckets.Add((await StoredRecords.JsonAsync(redis.Database, key))!);
        }

        Assert.All(created, c => Assert.Contains(buckets, b => b.Contains(c.Session.SessionId, StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Indexes_of_users_without_sessions_leave_memory_as_soon_as_they_have_answered()
    {
        // Orleans' default collection age (minutes) would keep every one of them: only leaving at once passes.
        await using var cluster = await SessionCluster.StartAsync(redis, 1);
        var real = await cluster.Store.CreateAsync("has-sessions-" + Guid.NewGuid().ToString("N")[..8], cancellationToken: Ct);
        await Task.WhenAll(Enumerable.Range(0, 500).Select(async i =>
        {
            var nobody = $"nobody-{i}-{Guid.NewGuid():N}";
            Assert.Empty((await cluster.Store.ListByUserAsync(nobody, cancellationToken: Ct)).Sessions);
            Assert.Equal(0, await cluster.Store.CountForUserAsync(nobody, Ct));
            Assert.False(await cluster.Store.RevokeAsync(nobody, real.Session.SessionId, Ct));
            Assert.Equal(0, await cluster.Store.DeleteAllForUserAsync(nobody, cancellationToken: Ct));
        }));

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (await cluster.ActivationsAsync(typeof(UserSessionsGrain)) > 1 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, Ct);
        }

        Assert.Equal(1, await cluster.ActivationsAsync(typeof(UserSessionsGrain))); // the user with a session keeps its index
        Assert.Single((await cluster.Store.ListByUserAsync(real.Session.UserId, cancellationToken: Ct)).Sessions);
    }

    [Fact]
    public async Task Idle_cache_entries_deactivate_and_keep_their_value()
    {
        await using var cluster = await SessionCluster.StartAsync(redis, 1, o => o.IdleSessionDeactivation = TimeSpan.FromSeconds(2),
            silo => silo.Configure<GrainCollectionOptions>(c => c.CollectionQuantum = TimeSpan.FromSeconds(1)));
        var entry = cluster.Grains.GetGrain<ICacheEntryGrain>("idle-cache-" + Guid.NewGuid().ToString("N"));
        await entry.SetAsync(new CacheEntry([1, 2, 3], AbsoluteExpiresAt: null, SlidingExpiration: TimeSpan.FromMinutes(10)));
        Assert.Equal(1, await cluster.ActivationsAsync(typeof(CacheEntryGrain)));

        // Orleans' default collection age is far longer than this wait: only the configured idle age gets it out in time.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (await cluster.ActivationsAsync(typeof(CacheEntryGrain)) > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(250, Ct);
        }

        Assert.Equal(0, await cluster.ActivationsAsync(typeof(CacheEntryGrain)));
        Assert.Equal([1, 2, 3], await entry.GetAsync(slide: false));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_last_silo_stops_cleanly_with_active_sessions_whose_indexes_are_idle(bool onRedis)
    {
        var log = new RecordingLog(LogLevel.Warning) { Recording = false };
        var cluster = await SessionCluster.StartAsync(onRedis ? redis : null, 1, configureSilo: silo => silo.Services.AddSingleton<ILoggerProvider>(log));
        CreatedSession[] created;
        try
        {
            created = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => cluster.Store.CreateAsync($"last-silo-{i % 8}", cancellationToken: Ct)));

            // Everything idle leaves memory, the user indexes too; the sessions come back when validated (slid by
            // a minute: less than the lazy-write interval, so only memory has it) and the indexes stay out.
            await cluster.Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, Ct);
            Assert.Equal(0, await cluster.ActivationsAsync(typeof(UserSessionsGrain)));
            cluster.Time.Advance(TimeSpan.FromMinutes(1));
            foreach (var session in created)
            {
                Assert.NotNull(await cluster.Store.ValidateAsync(session.Token.Value, cancellationToken: Ct));
            }

            Assert.Equal(0, await cluster.ActivationsAsync(typeof(UserSessionsGrain)));
            Assert.Equal(created.Length, await cluster.SessionActivationsAsync());
            log.Recording = true;
        }
        finally
        {
            await cluster.DisposeAsync();
        }

        // Stopping wrote each slide where a store outlives the silo, and asked nothing of grains that cannot be placed.
        Assert.True(log.Entries.IsEmpty, "warnings and errors while the last silo stopped:\n" + string.Join("\n", log.Entries.Take(5)));
        if (onRedis)
        {
            var slid = created[0].Session.LastAccessedAt.AddMinutes(1);
            foreach (var session in created)
            {
                Assert.Equal(slid, (await cluster.StoredSessionAsync(session.Session.SessionId))?.Session?.LastAccessedAt);
            }
        }
    }
}
