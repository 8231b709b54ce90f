using System.Collections.Immutable;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>Bad input gets "not found" or a clear <see cref="ArgumentException"/>, and changes nothing else.</summary>
[Collection(RedisClusterCollection.Name)]
public sealed class BadInputTests(RedisClusterFixture fixture)
{
    private SessionCluster Cluster => fixture.Cluster;

    private ISessionStore Store => fixture.Cluster.Store;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string, string> JunkTokens()
    {
        var forged = SessionTokenCodec.Ephemeral().Create();
        return new TheoryData<string, string>
        {
            { "empty", "" },
            { "1 MB", new string('A', 1024 * 1024) },
            { "non-base64", "sg1_local_" + new string('*', 64) },
            { "NUL bytes", "sg1_local_" + new string('\0', 64) },
            { "a session id", forged.SessionId },
            { "a token signed with another key", forged.Value },
        };
    }

    [Theory]
    [MemberData(nameof(JunkTokens))]
    public async Task Junk_tokens_are_not_found_by_every_token_operation(string _, string token)
    {
        var countBefore = await Store.CountAsync(Ct);

        Assert.Null(await Store.ValidateAsync(token, cancellationToken: Ct));
        Assert.Null(await Store.UpdateAsync(token, new SessionUpdate { Role = "x" }, cancellationToken: Ct));
        Assert.Null(await Store.RotateAsync(token, cancellationToken: Ct));
        Assert.False(await Store.DeleteAsync(token, Ct));

        Assert.Equal(countBefore, await Store.CountAsync(Ct));
    }

    [Fact]
    public async Task Malformed_tokens_activate_no_grain()
    {
        var before = await Cluster.SessionActivationsAsync();

        var forged = SessionTokenCodec.Ephemeral().Create();
        foreach (var token in new[] { "", "junk", "sg1_local_" + new string('!', 64), forged.SessionId, forged.Value, new string('x', 4096) })
        {
            Assert.Null(await Store.ValidateAsync(token, cancellationToken: Ct));
            Assert.False(await Store.DeleteAsync(token, Ct));
        }

        Assert.Equal(before, await Cluster.SessionActivationsAsync());

        // The counter does see session activations: a real token's session is activated.
        var created = await Store.CreateAsync("activation-" + Guid.NewGuid().ToString("N")[..8], cancellationToken: Ct);
        Assert.NotNull(await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
        Assert.True(await Cluster.SessionActivationsAsync() > before);
    }

    [Fact]
    public async Task A_genuine_token_of_a_session_that_never_existed_is_not_found()
    {
        var countBefore = await Store.CountAsync(Ct);
        var neverCreated = Cluster.Tokens.Create().Value;

        Assert.Null(await Store.ValidateAsync(neverCreated, cancellationToken: Ct));
        Assert.Null(await Store.UpdateAsync(neverCreated, new SessionUpdate { Role = "x" }, cancellationToken: Ct));
        Assert.False(await Store.DeleteAsync(neverCreated, Ct));
        Assert.Equal(countBefore, await Store.CountAsync(Ct));
    }

    [Fact]
    public async Task A_session_id_passed_as_a_token_does_not_reach_its_session()
    {
        var created = await Store.CreateAsync("uid-" + Guid.NewGuid().ToString("N")[..8], cancellationToken: Ct);

        Assert.Null(await Store.ValidateAsync(created.Session.SessionId, cancellationToken: Ct));
        Assert.False(await Store.DeleteAsync(created.Session.SessionId, Ct));
        Assert.NotNull(await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
    }

    public static TheoryData<string, string> BadUserIds() => new()
    {
        { "empty", "" },
        { "whitespace", "   " },
        { "10 KB", new string('u', 10 * 1024) },
        { "control characters", "alice\0" },
    };

    [Theory]
    [MemberData(nameof(BadUserIds))]
    public async Task Bad_user_ids_are_argument_errors_everywhere(string _, string userId)
    {
        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.CreateAsync(userId, cancellationToken: Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.ListByUserAsync(userId, cancellationToken: Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.RevokeAsync(userId, Cluster.Tokens.Create().SessionId, Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.DeleteAllForUserAsync(userId, cancellationToken: Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.CountForUserAsync(userId, Ct));
    }

    [Fact]
    public async Task An_unknown_user_has_no_sessions_and_nothing_to_revoke()
    {
        var user = "nobody-" + Guid.NewGuid().ToString("N")[..8];
        Assert.Empty((await Store.ListByUserAsync(user, cancellationToken: Ct)).Sessions);
        Assert.False(await Store.RevokeAsync(user, Cluster.Tokens.Create().SessionId, Ct));
        Assert.False(await Store.RevokeAsync(user, "not-an-id", Ct));
        Assert.Equal(0, await Store.DeleteAllForUserAsync(user, cancellationToken: Ct));
        Assert.Equal(0, await Store.CountForUserAsync(user, Ct));
    }

    public static TheoryData<string, SessionCreateOptions> BadCreateOptions() => new()
    {
        { "negative idle timeout", new SessionCreateOptions { IdleTimeout = TimeSpan.FromSeconds(-1) } },
        { "zero idle timeout", new SessionCreateOptions { IdleTimeout = TimeSpan.Zero } },
        { "absurd idle timeout", new SessionCreateOptions { IdleTimeout = TimeSpan.FromDays(100_000) } },
        { "negative absolute timeout", new SessionCreateOptions { AbsoluteTimeout = TimeSpan.FromHours(-1) } },
        { "absurd absolute timeout", new SessionCreateOptions { AbsoluteTimeout = TimeSpan.MaxValue } },
        { "limit of 0", new SessionCreateOptions { MaxSessionsPerUser = 0 } },
        { "metadata over 64 KiB", new SessionCreateOptions { Metadata = ImmutableDictionary<string, string>.Empty.Add("big", new string('m', 65 * 1024)) } },
        { "payload over 64 KiB", new SessionCreateOptions { Payload = new byte[65 * 1024] } },
        { "unknown limit policy", new SessionCreateOptions { LimitPolicy = (SessionLimitPolicy)42 } },
    };

    [Theory]
    [MemberData(nameof(BadCreateOptions))]
    public async Task Bad_create_options_are_argument_errors_and_create_nothing(string _, SessionCreateOptions options)
    {
        var user = "bad-" + Guid.NewGuid().ToString("N")[..8];
        var existing = await Store.CreateAsync(user, cancellationToken: Ct);
        var countBefore = await Store.CountAsync(Ct);

        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.CreateAsync(user, options, Ct));

        Assert.Equal(countBefore, await Store.CountAsync(Ct));
        Assert.Equal([existing.Session.SessionId], (await Store.ListByUserAsync(user, cancellationToken: Ct)).Sessions.Select(s => s.SessionId));
    }

    [Fact]
    public async Task An_update_over_the_size_limit_is_refused_and_changes_nothing()
    {
        var created = await Store.CreateAsync("big-" + Guid.NewGuid().ToString("N")[..8], cancellationToken: Ct);

        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.UpdateAsync(created.Token.Value, new SessionUpdate
        {
            Metadata = ImmutableDictionary<string, string?>.Empty.Add("a", new string('a', 40_000)).Add("b", new string('b', 40_000)),
        }, cancellationToken: Ct));

        var session = await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct);
        Assert.Equal(1, session!.Version);
        Assert.Empty(session.Metadata);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    [InlineData(1001)]
    public async Task Page_sizes_outside_1_to_1000_are_argument_errors(int limit) =>
        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.ListByUserAsync("someone", limit, cancellationToken: Ct));

    [Fact]
    public async Task A_forged_cursor_is_an_argument_error() =>
        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.ListByUserAsync("someone", 10, "not-a-cursor!", Ct));

    [Fact]
    public async Task A_rotation_grace_period_beyond_the_maximum_is_an_argument_error_and_keeps_the_session()
    {
        var created = await Store.CreateAsync("grace-" + Guid.NewGuid().ToString("N")[..8], cancellationToken: Ct);

        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.RotateAsync(created.Token.Value, TimeSpan.FromDays(1), Ct));

        Assert.NotNull(await Store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
    }

}
