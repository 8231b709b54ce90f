using SessionGrains.Tests.Infrastructure;
using StackExchange.Redis;

namespace SessionGrains.Tests;

/// <summary>What Redis holds: state that outlives every silo, and never a token.</summary>
public sealed class PersistenceTests(RedisServer redis)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Sessions_and_indexes_survive_stopping_and_restarting_all_silos()
    {
        var user = "restart-" + Guid.NewGuid().ToString("N")[..8];
        string serviceId;
        SessionTokenCodec tokens;
        List<CreatedSession> sessions = [];
        string token;
        await using (var first = await SessionCluster.StartAsync(redis))
        {
            serviceId = first.ServiceId;
            tokens = first.Tokens;
            for (var i = 0; i < 3; i++)
            {
                sessions.Add(await first.Store.CreateAsync(user, cancellationToken: Ct));
            }

            await first.Store.UpdateAsync(sessions[0].Token.Value, new SessionUpdate { Role = "kept" }, cancellationToken: Ct);
            token = sessions[0].Token.Value;
        }

        await using var second = await SessionCluster.StartAsync(redis, serviceId: serviceId, tokens: tokens);
        var reloaded = await second.Store.ValidateAsync(token, cancellationToken: Ct);
        Assert.NotNull(reloaded);
        Assert.Equal("kept", reloaded.Role);
        Assert.Equal(2, reloaded.Version);
        foreach (var session in sessions)
        {
            Assert.NotNull(await second.Store.ValidateAsync(session.Token.Value, cancellationToken: Ct));
        }

        var listed = await second.Store.ListByUserAsync(user, cancellationToken: Ct);
        Assert.Equal(sessions.Select(s => s.Session.SessionId).Order(), listed.Sessions.Select(s => s.SessionId).Order());
        Assert.Equal(3, await second.Store.CountAsync(Ct));
    }

    [Fact]
    public async Task No_token_appears_in_any_redis_key_or_value()
    {
        await using var cluster = await SessionCluster.StartAsync(redis, 1);
        var tokens = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var created = await cluster.Store.CreateAsync("secret-" + i % 2, cancellationToken: Ct);
            await cluster.Store.ValidateAsync(created.Token.Value, cancellationToken: Ct);
            var rotated = await cluster.Store.RotateAsync(created.Token.Value, TimeSpan.FromSeconds(10), Ct);
            tokens.Add(created.Token.Value);
            tokens.Add(rotated!.Token.Value);
        }

        var dump = new List<string>();
        await foreach (var key in redis.Server.KeysAsync(pattern: cluster.ServiceId + "*"))
        {
            dump.Add(key.ToString());
            var type = await redis.Database.KeyTypeAsync(key);
            if (type == RedisType.Hash)
            {
                dump.AddRange((await redis.Database.HashGetAllAsync(key)).Select(e => e.Name + "=" + e.Value));
            }
            else if (type == RedisType.String)
            {
                dump.Add(((string?)await redis.Database.StringGetAsync(key)) ?? "");
            }
        }

        Assert.Contains(dump, entry => entry.StartsWith(cluster.ServiceId + "/s/", StringComparison.Ordinal));
        foreach (var token in tokens)
        {
            var secret = token[SessionToken.Prefix.Length..];
            Assert.DoesNotContain(dump, entry => entry.Contains(secret, StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Stored_state_leaves_out_defaults_and_reads_back_whole()
    {
        await using var cluster = await SessionCluster.StartAsync(redis, 1);
        var plain = await cluster.Store.CreateAsync("compact-user", cancellationToken: Ct);
        var full = await cluster.Store.CreateAsync("compact-user", cancellationToken: Ct);
        await cluster.Store.UpdateAsync(full.Token.Value, new SessionUpdate { Role = "admin" }, cancellationToken: Ct);

        // Nulls, empty payloads and zero counters are not written: the etag, the user id, three times and flags.
        var stored = (byte[])(await redis.Database.StringGetAsync(cluster.SessionKey(plain.Session.SessionId)))!;
        Assert.InRange(stored.Length, 1, 8 + "compact-user".Length + 3 * 9 + 8);

        // ...and a restarted cluster reads both sessions back as they were.
        var serviceId = cluster.ServiceId;
        await cluster.DisposeAsync();
        await using var restarted = await SessionCluster.StartAsync(redis, 1, serviceId: serviceId, tokens: cluster.Tokens);
        var plainBack = await restarted.Store.ValidateAsync(plain.Token.Value, cancellationToken: Ct);
        var fullBack = await restarted.Store.ValidateAsync(full.Token.Value, cancellationToken: Ct);
        Assert.NotNull(plainBack);
        Assert.Null(plainBack.Role);
        Assert.Equal(SessionSignals.None, plainBack.Signals);
        Assert.Equal(0, plainBack.IpChanges);
        Assert.True(plainBack.Payload.IsEmpty);
        Assert.Empty(plainBack.Metadata);
        Assert.Equal(plain.Session.AbsoluteExpiresAt, plainBack.AbsoluteExpiresAt);
        Assert.Equal("admin", fullBack!.Role);
        Assert.Equal(2, fullBack.Version);
        Assert.Equal(2, (await restarted.Store.ListByUserAsync("compact-user", cancellationToken: Ct)).Sessions.Length);
    }
}
