using System.Globalization;
using Npgsql;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>
/// The session event log in PostgreSQL (<see cref="PostgresSessionEventLog"/>, the table of schema version 2): what a
/// subscription sees of one user's changes and where it resumes, appends racing from many users and silos, the trim to
/// the retained events, and the upgrade of a version-1 database.
/// </summary>
[Collection(PostgresClusterCollection.Name)]
public sealed class PostgresEventTests(PostgresClusterFixture fixture, PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_subscription_sees_one_users_changes_in_order_and_resumes_after_any_of_their_positions()
    {
        var store = fixture.Cluster.Store;
        var user = "ev-" + Guid.NewGuid().ToString("N")[..8];
        using var subscribed = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        subscribed.CancelAfter(TimeSpan.FromSeconds(60));
        await using var subscription = store.SubscribeAsync(user, afterPosition: null, subscribed.Token).GetAsyncEnumerator(subscribed.Token);

        // Null starts at the log's end as the first read is made: let it get there before the changes begin.
        var first = subscription.MoveNextAsync();
        await Task.Delay(TimeSpan.FromSeconds(1), Ct);

        var a = await store.CreateAsync(user, cancellationToken: Ct);
        var b = await store.CreateAsync(user, cancellationToken: Ct);
        var c = await store.CreateAsync(user, cancellationToken: Ct);
        var rotated = (await store.RotateAsync(a.Token.Value, cancellationToken: Ct))!;
        Assert.True(await store.RevokeAsync(user, b.Session.SessionId, Ct));
        Assert.True(await store.DeleteAsync(c.Token.Value, Ct));
        Assert.Equal(1, await store.DeleteAllForUserAsync(user, cancellationToken: Ct));

        var events = new List<SessionEvent>();
        Assert.True(await first);
        events.Add(subscription.Current);
        while (events.Count < 7)
        {
            Assert.True(await subscription.MoveNextAsync());
            events.Add(subscription.Current);
        }

        (SessionEventKind, string, string?, SessionEndReason?)[] expected =
        [
            (SessionEventKind.Created, a.Session.SessionId, null, null),
            (SessionEventKind.Created, b.Session.SessionId, null, null),
            (SessionEventKind.Created, c.Session.SessionId, null, null),
            (SessionEventKind.Rotated, rotated.Session.SessionId, a.Session.SessionId, null),
            (SessionEventKind.Ended, b.Session.SessionId, null, SessionEndReason.Revoked),
            (SessionEventKind.Ended, c.Session.SessionId, null, SessionEndReason.Deleted),
            (SessionEventKind.Ended, rotated.Session.SessionId, null, SessionEndReason.RevokedAll),
        ];
        Assert.Equal(expected, events.Select(e => (e.Kind, e.SessionId, e.PreviousSessionId, e.EndReason)));
        Assert.All(events, e => Assert.Equal(user, e.UserId));
        Assert.All(events, e => Assert.InRange(e.At, DateTimeOffset.UtcNow.AddMinutes(-2), DateTimeOffset.UtcNow.AddMinutes(2)));
        var positions = events.Select(e => long.Parse(e.Position, NumberStyles.None, CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(positions.Order(), positions);
        Assert.Equal(positions.Count, positions.Distinct().Count());

        // Resuming after the rotation gets the three ends and then nothing more.
        using var resumed = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        resumed.CancelAfter(TimeSpan.FromSeconds(20));
        var later = await TakeAsync(store.SubscribeAsync(user, events[3].Position, resumed.Token), 3);
        Assert.Equal(events.Skip(4).Select(e => e.Position), later.Select(e => e.Position));
        Assert.Equal(events.Skip(4), later);
        Assert.Empty(await TakeForAsync(store.SubscribeAsync(user, events[^1].Position, Ct), TimeSpan.FromSeconds(3)));
    }

    [Fact]
    public async Task Creates_racing_from_many_users_on_both_silos_each_appear_exactly_once_from_the_beginning()
    {
        var prefix = "evc-" + Guid.NewGuid().ToString("N")[..6] + "-";
        var users = Enumerable.Range(0, 20).Select(i => prefix + i.ToString(CultureInfo.InvariantCulture)).ToList();

        var created = await Task.WhenAll(Enumerable.Range(0, 200).Select(i =>
            Task.Run(() => fixture.Cluster.Store.CreateAsync(users[i % users.Count], cancellationToken: Ct), Ct)));

        // Every create has returned, so its event is in the log: the whole log is read to its end from the beginning.
        var log = await ReadAllAsync(fixture.Cluster.Grains.GetGrain<ISessionEventFeedGrain>(0));
        var ours = log.Where(e => e.UserId.StartsWith(prefix, StringComparison.Ordinal)).ToList();
        Assert.All(ours, e => Assert.Equal(SessionEventKind.Created, e.Kind));
        Assert.Equal(created.Select(c => c.Session.SessionId).Order(), ours.Select(e => e.SessionId).Order());
        var positions = log.Select(e => long.Parse(e.Position, NumberStyles.None, CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(positions.Order(), positions);
        Assert.Equal(positions.Count, positions.Distinct().Count());

        // A subscription from the beginning sees them too, each once.
        using var subscribed = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        subscribed.CancelAfter(TimeSpan.FromSeconds(30));
        var seen = await TakeAsync(fixture.Cluster.Store.SubscribeAsync(afterPosition: SessionEvent.Beginning, cancellationToken: subscribed.Token), log.Count);
        Assert.Equal(log.Select(e => e.Position), seen.Select(e => e.Position));
    }

    [Fact]
    public async Task A_reader_tailing_the_log_while_appends_race_from_several_silos_misses_none()
    {
        // Identities are handed out at insert and committed in any order; without the append lock a reader that has
        // read past a later position never sees an earlier one committed after its read.
        var database = await MigratedDatabaseAsync();
        var service = "tail-" + Guid.NewGuid().ToString("N")[..8];
        var silos = Enumerable.Range(0, 4).Select(_ => new PostgresSessionEventLog(service, database, new SessionEventOptions())).ToList();
        const int Appenders = 16, AppendsEach = 60;
        try
        {
            var appending = Task.WhenAll(Enumerable.Range(0, Appenders).Select(i => Task.Run(async () =>
            {
                for (var n = 0; n < AppendsEach; n++)
                {
                    await silos[i % silos.Count].AppendAsync([Event(SessionEventKind.Created, "u" + i.ToString(CultureInfo.InvariantCulture), n.ToString(CultureInfo.InvariantCulture))]);
                }
            }, Ct)));

            var tailed = new List<SessionEvent>();
            var after = SessionEvent.Beginning;
            while (true)
            {
                var done = appending.IsCompleted;
                var batch = await silos[0].ReadAsync(after, 1_000);
                tailed.AddRange(batch.Events);
                after = batch.Position;
                if (done && batch.Events.Length == 0)
                {
                    break;
                }
            }

            await appending;
            Assert.Equal(Appenders * AppendsEach, tailed.Count);
            Assert.Equal(Appenders * AppendsEach, tailed.Select(e => (e.UserId, e.SessionId)).Distinct().Count());
            Assert.Equal(after, await silos[1].EndAsync());
        }
        finally
        {
            foreach (var silo in silos)
            {
                await silo.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Positions_are_decimal_identities_and_anything_else_is_refused()
    {
        var database = await MigratedDatabaseAsync();
        await using var log = new PostgresSessionEventLog("pos-" + Guid.NewGuid().ToString("N")[..8], database, new SessionEventOptions());
        Assert.Equal(SessionEvent.Beginning, await log.EndAsync());
        var empty = await log.ReadAsync(SessionEvent.Beginning, 10);
        Assert.Empty(empty.Events);
        Assert.Equal(SessionEvent.Beginning, empty.Position);

        await log.AppendAsync(
        [
            Event(SessionEventKind.Created, "u", "s1"),
            Event(SessionEventKind.Rotated, "u", "s2") with { PreviousSessionId = "s1" },
            Event(SessionEventKind.Ended, "u", "s2") with { EndReason = SessionEndReason.Evicted },
            Event(SessionEventKind.Signal, "u", "s2") with { Signals = SessionSignals.IpChanged | SessionSignals.Throttled },
        ]);

        var all = await log.ReadAsync(SessionEvent.Beginning, 10);
        Assert.Equal(["s1", "s2", "s2", "s2"], all.Events.Select(e => e.SessionId));
        Assert.Equal("s1", all.Events[1].PreviousSessionId);
        Assert.Equal(SessionEndReason.Evicted, all.Events[2].EndReason);
        Assert.Equal(SessionSignals.IpChanged | SessionSignals.Throttled, all.Events[3].Signals);
        Assert.Equal(all.Events[^1].Position, all.Position);
        Assert.Equal(all.Position, await log.EndAsync());
        Assert.Equal(all.Events.Skip(2), (await log.ReadAsync(all.Events[1].Position, 10)).Events);
        Assert.Equal(all.Events.Take(2), (await log.ReadAsync(SessionEvent.Beginning, 2)).Events);
        var none = await log.ReadAsync(all.Position, 10);
        Assert.Empty(none.Events);
        Assert.Equal(all.Position, none.Position);

        foreach (var bad in new[] { "-1", "+1", " 1", "1.0", "abc", "1-0", "99999999999999999999", "" })
        {
            await Assert.ThrowsAsync<ArgumentException>(() => log.ReadAsync(bad, 10));
        }

        await Assert.ThrowsAsync<ArgumentException>(() => fixture.Cluster.Grains.GetGrain<ISessionEventFeedGrain>(0).ReadAsync("1-0", null, 10, TimeSpan.Zero));
    }

    [Fact]
    public async Task A_waiting_reader_is_woken_by_an_append_on_another_silo_within_the_poll_interval()
    {
        var database = await MigratedDatabaseAsync();
        var service = "wait-" + Guid.NewGuid().ToString("N")[..8];
        await using var reading = new PostgresSessionEventLog(service, database, new SessionEventOptions());
        await using var appending = new PostgresSessionEventLog(service, database, new SessionEventOptions());
        var end = await reading.EndAsync();

        var waited = System.Diagnostics.Stopwatch.StartNew();
        var wait = reading.WaitAsync(end, TimeSpan.FromSeconds(10));
        await Task.Delay(TimeSpan.FromMilliseconds(500), Ct);
        Assert.False(wait.IsCompleted);
        await appending.AppendAsync([Event(SessionEventKind.Created, "u", "s")]);
        await wait.WaitAsync(TimeSpan.FromSeconds(5), Ct);

        Assert.InRange(waited.Elapsed, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(2));
        Assert.Single((await reading.ReadAsync(end, 10)).Events);
    }

    [Fact]
    public async Task The_sweep_trims_the_log_to_its_newest_retained_events_of_its_own_cluster_only()
    {
        var database = await MigratedDatabaseAsync();
        await using var cluster = await SessionCluster.StartAsync(redis: null, silos: 1, configure: o => o.Events.RetainedEvents = 1_000, postgres: database);
        await using var log = new PostgresSessionEventLog(cluster.ServiceId, database, new SessionEventOptions());
        await using var neighbour = new PostgresSessionEventLog("other-" + Guid.NewGuid().ToString("N")[..8], database, new SessionEventOptions());
        for (var chunk = 0; chunk < 12; chunk++)
        {
            // Interleaved with another cluster's events in the same table: the trim counts only its own.
            await log.AppendAsync([.. Enumerable.Range(0, 100).Select(n => Event(SessionEventKind.Created, "u", (chunk * 100 + n).ToString(CultureInfo.InvariantCulture)))]);
            await neighbour.AppendAsync([Event(SessionEventKind.Created, "n", chunk.ToString(CultureInfo.InvariantCulture))]);
        }

        var firstAppended = (await log.ReadAsync(SessionEvent.Beginning, 1)).Position;
        var sweep = cluster.Grains.GetGrain<IPostgresSweepGrain>(0);
        Assert.Equal(200L, await sweep.TrimEventsAsync());

        // A reader resuming after a trimmed event is told; one after a kept event is not.
        Assert.True((await log.ReadAsync(firstAppended, 10)).Trimmed);
        var firstKept = (await log.ReadAsync(SessionEvent.Beginning, 1)).Position;
        Assert.False((await log.ReadAsync(firstKept, 10)).Trimmed);
        Assert.False((await log.ReadAsync(SessionEvent.Beginning, 10)).Trimmed);

        var kept = await ReadAllAsync(log);
        Assert.Equal(Enumerable.Range(200, 1_000).Select(n => n.ToString(CultureInfo.InvariantCulture)), kept.Select(e => e.SessionId));
        Assert.Equal(12, (await ReadAllAsync(neighbour)).Count);
        Assert.Equal(0L, await sweep.TrimEventsAsync());

        // The hourly pass trims too.
        await log.AppendAsync([.. Enumerable.Range(1_200, 50).Select(n => Event(SessionEventKind.Created, "u", n.ToString(CultureInfo.InvariantCulture)))]);
        await sweep.SweepAsync(PostgresSweepGrain.StaleAfter);
        kept = await ReadAllAsync(log);
        Assert.Equal(Enumerable.Range(250, 1_000).Select(n => n.ToString(CultureInfo.InvariantCulture)), kept.Select(e => e.SessionId));
    }

    [Fact]
    public async Task Migrate_upgrades_a_version_1_database_which_a_silo_refuses_until_then()
    {
        var database = await postgres.CreateDatabaseAsync();
        Assert.Equal(0, await PostgresSchema.MigrateToAsync(database, 1, Ct));
        Assert.False(await EventTableExistsAsync(database));

        var refused = await Assert.ThrowsAnyAsync<Exception>(() => SessionCluster.StartAsync(redis: null, silos: 1, postgres: database));
        var message = string.Join(" / ", Flatten(refused).Select(e => e.Message));
        Assert.Contains("schema version 1; this release needs 2", message, StringComparison.Ordinal);
        Assert.Contains(PostgresSchema.MigrateCommand, message, StringComparison.Ordinal);

        Assert.Equal(1, await PostgresSchema.MigrateAsync(database, Ct));
        Assert.True(await EventTableExistsAsync(database));
        Assert.Equal(2, await PostgresSchema.MigrateAsync(database, Ct));

        await using var log = new PostgresSessionEventLog("upgraded", database, new SessionEventOptions());
        await log.AppendAsync([Event(SessionEventKind.Created, "u", "s")]);
        Assert.Equal("s", Assert.Single((await log.ReadAsync(SessionEvent.Beginning, 10)).Events).SessionId);
    }

    private async Task<string> MigratedDatabaseAsync()
    {
        var database = await postgres.CreateDatabaseAsync();
        await PostgresSchema.MigrateAsync(database, Ct);
        return database;
    }

    private static SessionEvent Event(SessionEventKind kind, string user, string session) =>
        new(kind, user, session, DateTimeOffset.UtcNow);

    private static async Task<List<SessionEvent>> ReadAllAsync(ISessionEventFeedGrain feed)
    {
        var events = new List<SessionEvent>();
        var after = SessionEvent.Beginning;
        while (true)
        {
            var batch = await feed.ReadAsync(after, null, 1_000, TimeSpan.Zero);
            if (batch.Events.Length == 0)
            {
                return events;
            }

            events.AddRange(batch.Events);
            after = batch.Position;
        }
    }

    private static async Task<List<SessionEvent>> ReadAllAsync(PostgresSessionEventLog log)
    {
        var events = new List<SessionEvent>();
        var after = SessionEvent.Beginning;
        while (true)
        {
            var batch = await log.ReadAsync(after, 1_000);
            if (batch.Events.Length == 0)
            {
                return events;
            }

            events.AddRange(batch.Events);
            after = batch.Position;
        }
    }

    private static async Task<List<SessionEvent>> TakeAsync(IAsyncEnumerable<SessionEvent> events, int count)
    {
        var taken = new List<SessionEvent>();
        if (count == 0)
        {
            return taken;
        }

        await foreach (var e in events)
        {
            taken.Add(e);
            if (taken.Count == count)
            {
                break;
            }
        }

        return taken;
    }

    /// <summary>Whatever the subscription yields within <paramref name="time"/>.</summary>
    private static async Task<List<SessionEvent>> TakeForAsync(IAsyncEnumerable<SessionEvent> events, TimeSpan time)
    {
        var taken = new List<SessionEvent>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        stop.CancelAfter(time);
        try
        {
            await foreach (var e in events.WithCancellation(stop.Token))
            {
                taken.Add(e);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested && !Ct.IsCancellationRequested)
        {
        }

        return taken;
    }

    private static async Task<bool> EventTableExistsAsync(string database)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand("SELECT to_regclass('sessiongrains_events') IS NOT NULL", connection);
        return (bool)(await command.ExecuteScalarAsync(Ct))!;
    }

    private static IEnumerable<Exception> Flatten(Exception exception)
    {
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            yield return e;
            if (e is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions.SelectMany(Flatten))
                {
                    yield return inner;
                }
            }
        }
    }
}
