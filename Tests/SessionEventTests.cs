using System.Text.Json;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>
/// Session events through <see cref="ISessionStore.SubscribeAsync"/>, on every store: one event for each change the
/// user index makes, in order, with the reason of each end; none for a call that changed nothing; no token.
/// </summary>
public abstract class SessionEventTests(StoreClusterFixture fixture)
{
    private SessionCluster Cluster => fixture.Cluster;

    private ISessionStore Store => Cluster.Store;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string NewUser() => "events-" + Guid.NewGuid().ToString("N")[..12];

    [Fact]
    public async Task A_subscriber_sees_each_create_rotation_and_end_of_a_user_once_in_order_with_its_reason()
    {
        var user = NewUser();
        var a = await Store.CreateAsync(user, cancellationToken: Ct);
        var b = await Store.CreateAsync(user, cancellationToken: Ct);
        var rotated = (await Store.RotateAsync(a.Token.Value, cancellationToken: Ct))!;
        Assert.True(await Store.RevokeAsync(user, b.Session.SessionId, Ct));
        Assert.True(await Store.DeleteAsync(rotated.Token.Value, Ct));
        var c = await Store.CreateAsync(user, cancellationToken: Ct);
        var d = await Store.CreateAsync(user, cancellationToken: Ct);
        Assert.Equal(2, await Store.DeleteAllForUserAsync(user, cancellationToken: Ct));

        var events = await EventsOfAsync(user, count: 9);
        Assert.Equal(
            [
                (SessionEventKind.Created, a.Session.SessionId, null, null),
                (SessionEventKind.Created, b.Session.SessionId, null, null),
                (SessionEventKind.Rotated, rotated.Session.SessionId, a.Session.SessionId, null),
                (SessionEventKind.Ended, b.Session.SessionId, null, SessionEndReason.Revoked),
                (SessionEventKind.Ended, rotated.Session.SessionId, null, SessionEndReason.Deleted),
                (SessionEventKind.Created, c.Session.SessionId, null, null),
                (SessionEventKind.Created, d.Session.SessionId, null, null),
            ],
            events.Take(7).Select(e => (e.Kind, e.SessionId, e.PreviousSessionId, e.EndReason)).ToArray());

        // Sign-out-everywhere ends the rest in one change: its events are together, in no particular order.
        Assert.Equal(
            new[] { (c.Session.SessionId, SessionEndReason.RevokedAll), (d.Session.SessionId, SessionEndReason.RevokedAll) }.Order(),
            events.Skip(7).Select(e => (e.SessionId, e.EndReason!.Value)).Order().ToArray());
        Assert.All(events, e => Assert.Equal(user, e.UserId));
        Assert.Equal(events.Count, events.Select(e => e.Position).Distinct().Count());
        Assert.All(events, e => Assert.InRange(e.At, Cluster.Time.GetUtcNow().AddMinutes(-1), Cluster.Time.GetUtcNow()));
    }

    [Fact]
    public async Task A_session_evicted_by_the_limit_or_left_to_expire_ends_with_that_reason()
    {
        var user = NewUser();
        var created = new List<string>();
        for (var i = 0; i <= StoreClusterFixture.MaxSessionsPerUser; i++)
        {
            created.Add((await Store.CreateAsync(user, cancellationToken: Ct)).Session.SessionId);
        }

        // The create over the limit ends the oldest first (the clock stands still here: the lowest id), then adds the new one.
        var evicted = (await EventsOfAsync(user, count: StoreClusterFixture.MaxSessionsPerUser + 2))[^2];
        var listed = (await Store.ListByUserAsync(user, cancellationToken: Ct)).Sessions.Select(s => s.SessionId);
        Assert.Equal((SessionEventKind.Ended, SessionEndReason.Evicted), (evicted.Kind, evicted.EndReason));
        Assert.Equal(created.Except(listed), [evicted.SessionId]);

        // Left to expire: the expiry bucket (1 s wide here) ends it and the index hears of it, with no call from anyone.
        var other = NewUser();
        var expiring = await Store.CreateAsync(other, new SessionCreateOptions { IdleTimeout = TimeSpan.FromSeconds(2) }, Ct);
        Cluster.Time.Advance(TimeSpan.FromSeconds(3));
        var ended = (await EventsOfAsync(other, count: 2, within: TimeSpan.FromSeconds(30)))[^1];
        Assert.Equal((SessionEventKind.Ended, expiring.Session.SessionId, (SessionEndReason?)SessionEndReason.Expired), (ended.Kind, ended.SessionId, ended.EndReason));
    }

    [Fact]
    public async Task Calls_that_change_nothing_leave_no_event()
    {
        var user = NewUser();
        var live = await Store.CreateAsync(user, cancellationToken: Ct);
        var refused = new SessionCreateOptions { MaxSessionsPerUser = 1, LimitPolicy = SessionLimitPolicy.RejectNew };
        await Assert.ThrowsAsync<SessionLimitExceededException>(() => Store.CreateAsync(user, refused, Ct));
        Assert.False(await Store.RevokeAsync(user, "no-such-session", Ct));
        Assert.False(await Store.DeleteAsync("not-a-token", Ct));
        Assert.Null(await Store.RotateAsync("not-a-token", cancellationToken: Ct));
        Assert.Equal(0, await Store.DeleteAllForUserAsync(user, exceptSessionId: live.Session.SessionId, Ct));

        // A marker change after them: had any of them made an event, it would come before this one.
        Assert.True(await Store.DeleteAsync(live.Token.Value, Ct));
        var events = await EventsOfAsync(user, count: 2);
        Assert.Equal([SessionEventKind.Created, SessionEventKind.Ended], events.Select(e => e.Kind));
        await AssertNoMoreEventsAsync(user, events[^1].Position);
    }

    [Fact]
    public async Task A_consumer_that_resumes_from_a_position_gets_exactly_what_came_after_it()
    {
        var user = NewUser();
        var sessions = new List<CreatedSession>();
        for (var i = 0; i < 3; i++)
        {
            sessions.Add(await Store.CreateAsync(user, cancellationToken: Ct));
        }

        var firstRead = await EventsOfAsync(user, count: 3);

        // The consumer is gone while more happens; it comes back with the position of the last event it handled.
        Assert.True(await Store.RevokeAsync(user, sessions[0].Session.SessionId, Ct));
        var later = await Store.CreateAsync(user, cancellationToken: Ct);
        var resumed = await EventsOfAsync(user, count: 2, after: firstRead[1].Position);
        Assert.Equal(
            [(SessionEventKind.Created, sessions[2].Session.SessionId), (SessionEventKind.Ended, sessions[0].Session.SessionId)],
            resumed.Select(e => (e.Kind, e.SessionId)));
        Assert.Equal(later.Session.SessionId, (await EventsOfAsync(user, count: 1, after: resumed[^1].Position))[0].SessionId);
    }

    [Fact]
    public async Task A_subscription_from_now_sees_only_what_happens_after_it_starts_and_every_users_events_when_unfiltered()
    {
        var user = NewUser();
        await Store.CreateAsync(user, cancellationToken: Ct);
        await using var live = Store.SubscribeAsync(cancellationToken: Ct).GetAsyncEnumerator(Ct);
        var next = live.MoveNextAsync().AsTask();

        // The subscription takes the log's end as its start on its first read: give it a moment before the change.
        await Task.Delay(500, Ct);
        var other = NewUser();
        var created = await Store.CreateAsync(other, cancellationToken: Ct);
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            Assert.True(await next.WaitAsync(deadline - DateTime.UtcNow, Ct));
            Assert.NotEqual(user, live.Current.UserId);
            if (live.Current.UserId == other)
            {
                break;
            }

            next = live.MoveNextAsync().AsTask();
        }

        Assert.Equal((SessionEventKind.Created, created.Session.SessionId), (live.Current.Kind, live.Current.SessionId));
    }

    [Fact]
    public async Task A_signal_is_an_event_and_no_event_carries_a_token()
    {
        var user = NewUser();
        var session = await Store.CreateAsync(user, new SessionCreateOptions { Client = new ClientInfo("203.0.113.10", "agent-a") }, Ct);
        Assert.NotNull(await Store.ValidateAsync(session.Token.Value, new ClientInfo("198.51.100.20", "agent-a"), Ct));
        var rotated = (await Store.RotateAsync(session.Token.Value, cancellationToken: Ct))!;

        var events = await EventsOfAsync(user, count: 3);
        var signal = Assert.Single(events, e => e.Kind == SessionEventKind.Signal);
        Assert.Equal((session.Session.SessionId, SessionSignals.IpChanged), (signal.SessionId, signal.Signals));
        var json = JsonSerializer.Serialize(events);
        Assert.DoesNotContain(session.Token.Value, json, StringComparison.Ordinal);
        Assert.DoesNotContain(rotated.Token.Value, json, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_position_that_is_not_one_of_the_log_is_refused()
    {
        await using var events = Store.SubscribeAsync(afterPosition: "not a position", cancellationToken: Ct).GetAsyncEnumerator(Ct);
        await Assert.ThrowsAsync<ArgumentException>(async () => await events.MoveNextAsync());
    }

    /// <summary>The first <paramref name="count"/> events of <paramref name="user"/> after <paramref name="after"/> (default: all retained).</summary>
    private async Task<List<SessionEvent>> EventsOfAsync(string user, int count, string after = SessionEvent.Beginning, TimeSpan? within = null)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(within ?? TimeSpan.FromSeconds(15));
        var events = new List<SessionEvent>();
        try
        {
            await foreach (var e in Store.SubscribeAsync(user, after, timeout.Token))
            {
                events.Add(e);
                if (events.Count == count)
                {
                    return events;
                }
            }
        }
        catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
        {
        }

        Assert.Fail($"{events.Count} of {count} events of the user arrived: {string.Join(", ", events.Select(e => $"{e.Kind} {e.EndReason}"))}");
        return events;
    }

    private async Task AssertNoMoreEventsAsync(string user, string after)
    {
        using var quiet = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        quiet.CancelAfter(TimeSpan.FromSeconds(3));
        try
        {
            await foreach (var e in Store.SubscribeAsync(user, after, quiet.Token))
            {
                Assert.Fail($"An event that should not exist: {e.Kind} {e.EndReason}.");
            }
        }
        catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
        {
        }
    }
}

/// <summary>The expiry event's lateness, on the real clock: a cluster of its own.</summary>
public sealed class SessionExpiryEventTests(RedisServer redis)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_expired_session_ends_with_an_event_no_later_than_an_expiry_bucket_after_its_expiry()
    {
        // Buckets 2 s wide; the session idles out 3 s after it is created, and nobody calls it again.
        var width = TimeSpan.FromSeconds(2);
        await using var cluster = await SessionCluster.StartAsync(redis, 1, o =>
        {
            o.TimeProvider = TimeProvider.System;
            o.ExpiryBucketWidth = width;
        });
        var user = "expiry-event-" + Guid.NewGuid().ToString("N")[..8];
        var created = await cluster.Store.CreateAsync(user, new SessionCreateOptions { IdleTimeout = TimeSpan.FromSeconds(3) }, Ct);
        var expiresAt = created.Session.ExpiresAt;

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        await foreach (var e in cluster.Store.SubscribeAsync(user, SessionEvent.Beginning, timeout.Token))
        {
            if (e.Kind == SessionEventKind.Ended)
            {
                var heardAt = DateTimeOffset.UtcNow;
                TestContext.Current.TestOutputHelper?.WriteLine($"expiry event made {(e.At - expiresAt).TotalSeconds:0.00} s and heard {(heardAt - expiresAt).TotalSeconds:0.00} s after the expiry; bucket width {width.TotalSeconds} s");
                Assert.Equal(SessionEndReason.Expired, e.EndReason);
                Assert.InRange(e.At, expiresAt, expiresAt + width);
                Assert.InRange(heardAt, expiresAt, expiresAt + width + TimeSpan.FromSeconds(1));
                return;
            }
        }
    }
}

/// <summary>The log keeps the newest events; a consumer that asks for older ones is told, not silently skipped ahead.</summary>
public sealed class SessionEventRetentionTests(RedisServer redis)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_consumer_further_behind_than_the_log_keeps_is_told_its_events_were_trimmed(bool onRedis)
    {
        await using var cluster = await SessionCluster.StartAsync(onRedis ? redis : null, 1, o => o.Events.RetainedEvents = 1_000);
        var user = "retention-" + Guid.NewGuid().ToString("N")[..8];
        await cluster.Store.CreateAsync(user, cancellationToken: Ct);
        var behind = (await FirstEventAsync(cluster.Store, user, SessionEvent.Beginning)).Position;

        // 1,300 more events: Redis trims whole nodes of its stream (100 entries each), so past 1,000 plus a node.
        for (var batch = 0; batch < 13; batch++)
        {
            await Task.WhenAll(Enumerable.Range(0, 100).Select(i => cluster.Store.CreateAsync($"{user}-{i}", cancellationToken: Ct)));
        }

        var late = await Assert.ThrowsAsync<SessionEventsTrimmedException>(() => FirstEventAsync(cluster.Store, null, behind));
        Assert.Equal(behind, late.Position);

        // A consumer that kept up is not told anything: from a recent position it reads on.
        var recent = await FirstEventAsync(cluster.Store, $"{user}-7", SessionEvent.Beginning);
        await cluster.Store.CreateAsync($"{user}-7", cancellationToken: Ct);
        Assert.Equal($"{user}-7", (await FirstEventAsync(cluster.Store, $"{user}-7", recent.Position)).UserId);
    }

    private static async Task<SessionEvent> FirstEventAsync(ISessionStore store, string? user, string after)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(15));
        await foreach (var e in store.SubscribeAsync(user, after, timeout.Token))
        {
            return e;
        }

        throw new InvalidOperationException("The subscription ended.");
    }
}

[Collection(RedisClusterCollection.Name)]
public sealed class SessionEventsOnRedis(RedisClusterFixture fixture) : SessionEventTests(fixture);

[Collection(MemoryClusterCollection.Name)]
public sealed class SessionEventsInMemory(MemoryClusterFixture fixture) : SessionEventTests(fixture);

[Collection(PostgresClusterCollection.Name)]
public sealed class SessionEventsOnPostgres(PostgresClusterFixture fixture) : SessionEventTests(fixture);
