using System.Collections.Immutable;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>The per-user limit and single-writer updates under concurrent callers, on each store.</summary>
public abstract class ConcurrencyTests(StoreClusterFixture fixture)
{
    private ISessionStore Store => fixture.Cluster.Store;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(SessionLimitPolicy.RejectNew)]
    [InlineData(SessionLimitPolicy.EvictOldest)]
    public async Task Fifty_concurrent_creates_never_exceed_a_limit_of_five(SessionLimitPolicy policy)
    {
        var user = "burst-" + Guid.NewGuid().ToString("N")[..8];
        var options = new SessionCreateOptions { MaxSessionsPerUser = 5, LimitPolicy = policy };

        var attempts = await Task.WhenAll(Enumerable.Range(0, 50).Select(async _ =>
        {
            try
            {
                return await Store.CreateAsync(user, options, Ct);
            }
            catch (SessionLimitExceededException)
            {
                return null;
            }
        }));

        var created = attempts.OfType<CreatedSession>().ToList();
        var live = new List<CreatedSession>();
        foreach (var session in created)
        {
            if (await Store.ValidateAsync(session.Token.Value, cancellationToken: Ct) is not null)
            {
                live.Add(session);
            }
        }

        Assert.Equal(5, live.Count);
        Assert.Equal(policy == SessionLimitPolicy.RejectNew ? 5 : 50, created.Count);
        Assert.Equal(5, await Store.CountForUserAsync(user, Ct));
        var listed = await Store.ListByUserAsync(user, cancellationToken: Ct);
        Assert.Equal(live.Select(s => s.Session.SessionId).Order(), listed.Sessions.Select(s => s.SessionId).Order());
    }

    [Fact]
    public async Task A_hundred_concurrent_updates_to_one_session_lose_none()
    {
        var created = await Store.CreateAsync("writer-" + Guid.NewGuid().ToString("N")[..8], cancellationToken: Ct);

        await Task.WhenAll(Enumerable.Range(0, 100).Select(i => Store.UpdateAsync(
            created.Token.Value,
            new SessionUpdate { Metadata = ImmutableDictionary<string, string?>.Empty.Add($"key{i}", i.ToString()) },
            cancellationToken: Ct)));

        var session = await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct);
        Assert.Equal(101, session!.Version);
        Assert.Equal(100, session.Metadata.Count);
        Assert.All(Enumerable.Range(0, 100), i => Assert.Equal(i.ToString(), session.Metadata[$"key{i}"]));
    }

    [Fact]
    public async Task Concurrent_updates_with_the_same_expected_version_let_exactly_one_win()
    {
        var created = await Store.CreateAsync("cas-" + Guid.NewGuid().ToString("N")[..8], cancellationToken: Ct);

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 20).Select(async i =>
        {
            try
            {
                await Store.UpdateAsync(created.Token.Value, new SessionUpdate { Role = $"r{i}" }, expectedVersion: 1, Ct);
                return true;
            }
            catch (SessionVersionConflictException)
            {
                return false;
            }
        }));

        Assert.Single(outcomes, won => won);
        Assert.Equal(2, (await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct))!.Version);
    }

    [Fact]
    public async Task Concurrent_revokes_deletes_and_lists_leave_the_index_and_sessions_in_agreement()
    {
        var user = "mixed-" + Guid.NewGuid().ToString("N")[..8];
        var sessions = new List<CreatedSession>();
        for (var i = 0; i < 10; i++)
        {
            sessions.Add(await Store.CreateAsync(user, cancellationToken: Ct));
        }

        await Task.WhenAll(sessions.Select((s, i) => (i % 3) switch
        {
            0 => Store.DeleteAsync(s.Token.Value, Ct),
            1 => Store.RevokeAsync(user, s.Session.SessionId, Ct),
            _ => Store.ListByUserAsync(user, cancellationToken: Ct).ContinueWith(_ => true, Ct),
        }));

        var listed = (await Store.ListByUserAsync(user, cancellationToken: Ct)).Sessions.Select(s => s.SessionId).ToHashSet();
        foreach (var session in sessions)
        {
            var live = await Store.ValidateAsync(session.Token.Value, cancellationToken: Ct) is not null;
            Assert.Equal(live, listed.Contains(session.Session.SessionId));
        }

        Assert.Equal(3, listed.Count);
    }
}

[Collection(RedisClusterCollection.Name)]
public sealed class ConcurrencyOnRedis(RedisClusterFixture fixture) : ConcurrencyTests(fixture);

[Collection(PostgresClusterCollection.Name)]
public sealed class ConcurrencyOnPostgres(PostgresClusterFixture fixture) : ConcurrencyTests(fixture);
