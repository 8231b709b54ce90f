using System.Collections.Immutable;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>Bad input gets "not found" or a clear <see cref="ArgumentException"/>, and changes nothing else.</summary>
public abstract class BadInputTests(StoreClusterFixture fixture)
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

    [Fact]
    public async Task Client_details_are_kept_bounded_whoever_calls_the_store()
    {
        var user = "client-" + Guid.NewGuid().ToString("N")[..8];
        var hugeAgent = new string('A', 12_000);
        var junkIp = new ClientInfo("<b>not-an-ip</b>", "Firefox/140");

        // The client library refuses a non-IP address, and so does the user index for a frontend that calls it directly.
        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.CreateAsync(user, new SessionCreateOptions { Client = junkIp }, Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => Cluster.Grains.UserSessions(user).CreateSessionAsync(Cluster.Tokens.Create().SessionId, new SessionCreateOptions { Client = junkIp }));
        Assert.Equal(0, await Store.CountForUserAsync(user, Ct));

        var created = await Store.CreateAsync(user, new SessionCreateOptions { Client = new ClientInfo("::ffff:192.0.2.1", hugeAgent) }, Ct);
        Assert.Equal(new ClientInfo("::ffff:192.0.2.1", hugeAgent[..ClientInfo.MaxUserAgentLength]), created.Session.CreatedFrom);

        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.ValidateAsync(created.Token.Value, junkIp, Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => Cluster.Grains.Session(created.Session.SessionId).ValidateAsync(junkIp));
        var seen = await Cluster.Grains.Session(created.Session.SessionId).ValidateAsync(new ClientInfo("2001:DB8::7", "x" + hugeAgent));
        Assert.Equal(new ClientInfo("2001:db8::7", "x" + hugeAgent[..(ClientInfo.MaxUserAgentLength - 1)]), seen!.LastSeenFrom);

        var listed = Assert.Single((await Store.ListByUserAsync(user, cancellationToken: Ct)).Sessions);
        Assert.All(new[] { listed.CreatedFrom!, listed.LastSeenFrom! }, client => Assert.InRange(client.UserAgent!.Length, 1, ClientInfo.MaxUserAgentLength));
    }

    [Fact]
    public async Task Client_details_count_towards_the_session_data_limit()
    {
        var user = "client-size-" + Guid.NewGuid().ToString("N")[..8];
        var client = new ClientInfo("192.0.2.1", new string('u', ClientInfo.MaxUserAgentLength));
        var payload = new byte[(64 * 1024) - 600]; // fits alone, not with the client stored twice (created from, last seen from)

        Assert.NotNull((await Store.CreateAsync(user, new SessionCreateOptions { Payload = payload }, Ct)).Session);
        var refused = await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.CreateAsync(user, new SessionCreateOptions { Payload = payload, Client = client }, Ct));
        Assert.Contains("client", refused.Message, StringComparison.Ordinal);

        // An update is measured with the client details the session already holds.
        var small = await Store.CreateAsync(user, new SessionCreateOptions { Client = client }, Ct);
        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.UpdateAsync(small.Token.Value, new SessionUpdate { Payload = payload }, cancellationToken: Ct));
        Assert.Equal(1, (await Store.ValidateAsync(small.Token.Value, cancellationToken: Ct))!.Version);
    }

    public static TheoryData<string> UrlShapedUserIds() => ["https://issuer.example/users/42", "tenant/bob", "urn:example:sub:1", "a%2Fb", "../.."];

    [Theory]
    [MemberData(nameof(UrlShapedUserIds))]
    public async Task User_ids_shaped_like_urls_are_valid_and_kept_apart_in_the_dotnet_api(string userId)
    {
        var user = userId + "-" + Guid.NewGuid().ToString("N")[..8];
        var created = await Store.CreateAsync(user, cancellationToken: Ct);
        Assert.Equal(user, created.Session.UserId);
        Assert.Equal([created.Session.SessionId], (await Store.ListByUserAsync(user, cancellationToken: Ct)).Sessions.Select(s => s.SessionId));
        Assert.Equal(0, await Store.CountForUserAsync(Uri.EscapeDataString(user), Ct)); // the .NET API never decodes: another user
        Assert.True(await Store.RevokeAsync(user, created.Session.SessionId, Ct));
        Assert.Equal(0, await Store.CountForUserAsync(user, Ct));
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

[Collection(RedisClusterCollection.Name)]
public sealed class BadInputOnRedis(RedisClusterFixture fixture) : BadInputTests(fixture);

[Collection(PostgresClusterCollection.Name)]
public sealed class BadInputOnPostgres(PostgresClusterFixture fixture) : BadInputTests(fixture);
