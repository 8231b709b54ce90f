using System.Collections.Immutable;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>Every operation of the store, against two silos on each store (<see cref="SessionLifecycleOnRedis"/>, <see cref="SessionLifecycleOnPostgres"/>).</summary>
public abstract class SessionLifecycleTests(StoreClusterFixture fixture)
{
    private ISessionStore Store => fixture.Cluster.Store;

    private static string NewUser() => "user-" + Guid.NewGuid().ToString("N")[..12];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Create_returns_a_token_and_a_session_with_the_defaults()
    {
        var user = NewUser();
        var now = fixture.Cluster.Time.GetUtcNow();
        var created = await Store.CreateAsync(user, new SessionCreateOptions
        {
            Role = "admin",
            Metadata = ImmutableDictionary<string, string>.Empty.Add("theme", "dark"),
            Client = new ClientInfo("203.0.113.5", "Firefox"),
        }, Ct);

        Assert.Equal(created.Token.SessionId, created.Session.SessionId);
        Assert.Equal(user, created.Session.UserId);
        Assert.Equal("admin", created.Session.Role);
        Assert.Equal("dark", created.Session.Metadata["theme"]);
        Assert.Equal(now, created.Session.CreatedAt);
        Assert.Equal(TimeSpan.FromMinutes(30), created.Session.IdleTimeout);
        Assert.Equal(now.AddHours(12), created.Session.AbsoluteExpiresAt);
        Assert.Equal(now.AddMinutes(30), created.Session.ExpiresAt);
        Assert.Equal(1, created.Session.Version);
        Assert.Equal("203.0.113.5", created.Session.CreatedFrom?.IpAddress);
    }

    [Fact]
    public async Task Validate_returns_the_session_and_slides_the_idle_timeout()
    {
        var created = await Store.CreateAsync(NewUser(), cancellationToken: Ct);
        fixture.Cluster.Time.Advance(TimeSpan.FromMinutes(10));

        var session = await Store.ValidateAsync(created.Token.Value, new ClientInfo("198.51.100.7", "Chrome"), Ct);

        Assert.NotNull(session);
        Assert.Equal(fixture.Cluster.Time.GetUtcNow(), session.LastAccessedAt);
        Assert.Equal(fixture.Cluster.Time.GetUtcNow().AddMinutes(30), session.ExpiresAt);
        Assert.Equal("198.51.100.7", session.LastSeenFrom?.IpAddress);
        Assert.Null(created.Session.CreatedFrom);
    }

    [Fact]
    public async Task Update_merges_metadata_removes_null_entries_and_moves_the_version()
    {
        var created = await Store.CreateAsync(NewUser(), new SessionCreateOptions
        {
            Metadata = ImmutableDictionary<string, string>.Empty.Add("a", "1").Add("b", "2"),
        }, Ct);

        var updated = await Store.UpdateAsync(created.Token.Value, new SessionUpdate
        {
            Metadata = ImmutableDictionary<string, string?>.Empty.Add("b", null).Add("c", "3"),
            Role = "editor",
        }, expectedVersion: 1, Ct);

        Assert.NotNull(updated);
        Assert.Equal(2, updated.Version);
        Assert.Equal("editor", updated.Role);
        Assert.Equal(new Dictionary<string, string> { ["a"] = "1", ["c"] = "3" }, updated.Metadata);
        var read = await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct);
        Assert.Equal(updated.Metadata, read!.Metadata);
    }

    [Fact]
    public async Task Update_with_a_stale_expected_version_fails_and_changes_nothing()
    {
        var created = await Store.CreateAsync(NewUser(), cancellationToken: Ct);
        await Store.UpdateAsync(created.Token.Value, new SessionUpdate { Role = "x" }, 1, Ct);

        var conflict = await Assert.ThrowsAsync<SessionVersionConflictException>(() =>
            Store.UpdateAsync(created.Token.Value, new SessionUpdate { Role = "y" }, 1, Ct));

        Assert.Equal(2, conflict.ActualVersion);
        Assert.Equal("x", (await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct))!.Role);
    }

    [Fact]
    public async Task Payload_bytes_round_trip_and_can_be_replaced()
    {
        var created = await Store.CreateAsync(NewUser(), new SessionCreateOptions { Payload = new byte[] { 1, 2, 3 } }, Ct);
        Assert.Equal(new byte[] { 1, 2, 3 }, (await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct))!.Payload.ToArray());

        await Store.UpdateAsync(created.Token.Value, new SessionUpdate { Payload = [9] }, cancellationToken: Ct);
        Assert.Equal(new byte[] { 9 }, (await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct))!.Payload.ToArray());
    }

    [Fact]
    public async Task Rotate_issues_a_new_token_for_the_same_session_and_kills_the_old_one()
    {
        var user = NewUser();
        var created = await Store.CreateAsync(user, new SessionCreateOptions { Role = "member" }, Ct);
        await Store.UpdateAsync(created.Token.Value, new SessionUpdate { Metadata = ImmutableDictionary<string, string?>.Empty.Add("k", "v") }, cancellationToken: Ct);

        var rotated = await Store.RotateAsync(created.Token.Value, cancellationToken: Ct);

        Assert.NotNull(rotated);
        Assert.NotEqual(created.Token.Value, rotated.Token.Value);
        Assert.NotEqual(created.Session.SessionId, rotated.Session.SessionId);
        Assert.Equal(created.Session.CreatedAt, rotated.Session.CreatedAt);
        Assert.Equal(created.Session.AbsoluteExpiresAt, rotated.Session.AbsoluteExpiresAt);
        Assert.Equal("v", rotated.Session.Metadata["k"]);
        Assert.Null(await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
        Assert.Null(await Store.RotateAsync(created.Token.Value, cancellationToken: Ct));
        Assert.NotNull(await Store.ValidateAsync(rotated.Token.Value, cancellationToken: Ct));
        var listed = await Store.ListByUserAsync(user, cancellationToken: Ct);
        Assert.Equal([rotated.Session.SessionId], listed.Sessions.Select(s => s.SessionId));
    }

    [Fact]
    public async Task Rotate_with_a_grace_window_keeps_the_old_token_working_until_the_window_ends()
    {
        var created = await Store.CreateAsync(NewUser(), cancellationToken: Ct);
        var rotated = await Store.RotateAsync(created.Token.Value, TimeSpan.FromSeconds(30), Ct);

        var viaOld = await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct);
        Assert.Equal(rotated!.Session.SessionId, viaOld?.SessionId);

        fixture.Cluster.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Null(await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
        Assert.NotNull(await Store.ValidateAsync(rotated.Token.Value, cancellationToken: Ct));
    }

    [Fact]
    public async Task Delete_ends_the_session_and_removes_it_from_the_index_at_once()
    {
        var user = NewUser();
        var keep = await Store.CreateAsync(user, cancellationToken: Ct);
        var gone = await Store.CreateAsync(user, cancellationToken: Ct);

        Assert.True(await Store.DeleteAsync(gone.Token.Value, Ct));

        Assert.Null(await Store.ValidateAsync(gone.Token.Value, cancellationToken: Ct));
        Assert.False(await Store.DeleteAsync(gone.Token.Value, Ct));
        var listed = await Store.ListByUserAsync(user, cancellationToken: Ct);
        Assert.Equal([keep.Session.SessionId], listed.Sessions.Select(s => s.SessionId));
        Assert.Equal(1, await Store.CountForUserAsync(user, Ct));
    }

    [Fact]
    public async Task Revoke_by_session_id_ends_that_device_only_for_its_owner()
    {
        var user = NewUser();
        var device = await Store.CreateAsync(user, cancellationToken: Ct);

        Assert.False(await Store.RevokeAsync(NewUser(), device.Session.SessionId, Ct));
        Assert.NotNull(await Store.ValidateAsync(device.Token.Value, cancellationToken: Ct));

        Assert.True(await Store.RevokeAsync(user, device.Session.SessionId, Ct));
        Assert.Null(await Store.ValidateAsync(device.Token.Value, cancellationToken: Ct));
        Assert.False(await Store.RevokeAsync(user, device.Session.SessionId, Ct));
        Assert.Empty((await Store.ListByUserAsync(user, cancellationToken: Ct)).Sessions);
    }

    [Fact]
    public async Task DeleteAllForUser_ends_every_session_but_the_one_kept_and_counts_them()
    {
        var user = NewUser();
        var sessions = new List<CreatedSession>();
        for (var i = 0; i < 4; i++)
        {
            sessions.Add(await Store.CreateAsync(user, cancellationToken: Ct));
        }

        var other = await Store.CreateAsync(NewUser(), cancellationToken: Ct);

        Assert.Equal(3, await Store.DeleteAllForUserAsync(user, sessions[1].Session.SessionId, Ct));

        Assert.NotNull(await Store.ValidateAsync(sessions[1].Token.Value, cancellationToken: Ct));
        foreach (var ended in sessions.Where((_, i) => i != 1))
        {
            Assert.Null(await Store.ValidateAsync(ended.Token.Value, cancellationToken: Ct));
        }

        Assert.NotNull(await Store.ValidateAsync(other.Token.Value, cancellationToken: Ct));
        Assert.Equal(1, await Store.DeleteAllForUserAsync(user, cancellationToken: Ct));
        Assert.Equal(0, await Store.CountForUserAsync(user, Ct));
    }

    [Fact]
    public async Task ListByUser_pages_through_all_live_sessions_oldest_first()
    {
        var user = NewUser();
        var ids = new List<string>();
        for (var i = 0; i < 7; i++)
        {
            ids.Add((await Store.CreateAsync(user, cancellationToken: Ct)).Session.SessionId);
            fixture.Cluster.Time.Advance(TimeSpan.FromMilliseconds(1));
        }

        var seen = new List<string>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var page = await Store.ListByUserAsync(user, 3, cursor, Ct);
            Assert.True(page.Sessions.Length <= 3);
            seen.AddRange(page.Sessions.Select(s => s.SessionId));
            cursor = page.Next;
            pages++;
        }
        while (cursor is not null);

        Assert.Equal(ids, seen);
        Assert.Equal(3, pages);
    }

    [Fact]
    public async Task Count_follows_creates_and_ends_without_a_key_scan()
    {
        var before = await Store.CountAsync(Ct);
        var user = NewUser();
        var a = await Store.CreateAsync(user, cancellationToken: Ct);
        await Store.CreateAsync(user, cancellationToken: Ct);
        await Store.CreateAsync(NewUser(), cancellationToken: Ct);
        Assert.Equal(before + 3, await Store.CountAsync(Ct));

        await Store.DeleteAsync(a.Token.Value, Ct);
        await Store.DeleteAllForUserAsync(user, cancellationToken: Ct);
        Assert.Equal(before + 1, await Store.CountAsync(Ct));
        Assert.Equal(0, await Store.CountForUserAsync(user, Ct));
    }

    [Fact]
    public async Task Evict_oldest_policy_ends_the_oldest_session_at_the_limit()
    {
        var user = NewUser();
        var options = new SessionCreateOptions { MaxSessionsPerUser = 2, LimitPolicy = SessionLimitPolicy.EvictOldest };
        var first = await Store.CreateAsync(user, options, Ct);
        fixture.Cluster.Time.Advance(TimeSpan.FromMilliseconds(1));
        var second = await Store.CreateAsync(user, options, Ct);
        fixture.Cluster.Time.Advance(TimeSpan.FromMilliseconds(1));
        var third = await Store.CreateAsync(user, options, Ct);

        Assert.Null(await Store.ValidateAsync(first.Token.Value, cancellationToken: Ct));
        Assert.NotNull(await Store.ValidateAsync(second.Token.Value, cancellationToken: Ct));
        Assert.NotNull(await Store.ValidateAsync(third.Token.Value, cancellationToken: Ct));
        Assert.Equal(2, await Store.CountForUserAsync(user, Ct));
    }

    [Fact]
    public async Task Reject_new_policy_refuses_a_session_over_the_limit()
    {
        var user = NewUser();
        var options = new SessionCreateOptions { MaxSessionsPerUser = 1, LimitPolicy = SessionLimitPolicy.RejectNew };
        var first = await Store.CreateAsync(user, options, Ct);

        await Assert.ThrowsAsync<SessionLimitExceededException>(() => Store.CreateAsync(user, options, Ct));

        Assert.NotNull(await Store.ValidateAsync(first.Token.Value, cancellationToken: Ct));
        Assert.Equal(1, await Store.CountForUserAsync(user, Ct));
    }

    [Fact]
    public async Task The_configured_limit_applies_when_a_create_names_none()
    {
        var user = NewUser();
        var sessions = new List<CreatedSession>();
        for (var i = 0; i < StoreClusterFixture.MaxSessionsPerUser + 3; i++)
        {
            sessions.Add(await Store.CreateAsync(user, cancellationToken: Ct));
            fixture.Cluster.Time.Advance(TimeSpan.FromMilliseconds(1));
        }

        Assert.Equal(StoreClusterFixture.MaxSessionsPerUser, await Store.CountForUserAsync(user, Ct));
        Assert.Null(await Store.ValidateAsync(sessions[2].Token.Value, cancellationToken: Ct));
        Assert.NotNull(await Store.ValidateAsync(sessions[3].Token.Value, cancellationToken: Ct));
    }
}

[Collection(RedisClusterCollection.Name)]
public sealed class SessionLifecycleOnRedis(RedisClusterFixture fixture) : SessionLifecycleTests(fixture);

[Collection(PostgresClusterCollection.Name)]
public sealed class SessionLifecycleOnPostgres(PostgresClusterFixture fixture) : SessionLifecycleTests(fixture);
