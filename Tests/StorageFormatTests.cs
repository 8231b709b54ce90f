using System.Collections.Immutable;
using Microsoft.Extensions.DependencyInjection;
using SessionGrains.Tests.Infrastructure;
using StackExchange.Redis;

namespace SessionGrains.Tests;

/// <summary>
/// The Redis record format (docs/storage.md): compact values that read back whole, records of the legacy format
/// (Orleans' Redis provider, JSON) served and rewritten compact on their next change, and the rolling upgrade in
/// two rolls that keeps every record readable by every silo running.
/// </summary>
public sealed class StorageFormatTests(RedisServer redis)
{
    private static readonly DateTimeOffset Created = new(2026, 12, 1, 10, 0, 0, 123, TimeSpan.Zero);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void A_session_with_every_field_set_reads_back_equal_and_a_new_field_cannot_be_left_out()
    {
        var full = new SessionInfo("session-id", "user-id", "admin", Created.AddTicks(7), Created.AddMinutes(3).AddTicks(1), TimeSpan.FromMinutes(30),
            Created.AddHours(12), new ClientInfo("192.0.2.1", "Mozilla/5.0"), new ClientInfo("2001:db8::1", null),
            ImmutableDictionary<string, string>.Empty.Add("plan", "pro").Add("tenant", "ü-7"), 42, new byte[] { 1, 2, 3 },
            SessionSignals.IpChanged | SessionSignals.UserAgentChanged, 2, 1);

        // Every property is set, so a property added to SessionInfo and forgotten by the codec fails this test.
        foreach (var property in typeof(SessionInfo).GetProperties().Where(p => p.Name != nameof(SessionInfo.ExpiresAt)))
        {
            var value = property.GetValue(full);
            var unset = value is null || (property.PropertyType.IsValueType && value.Equals(Activator.CreateInstance(property.PropertyType)))
                || value is ReadOnlyMemory<byte> { IsEmpty: true } || value is System.Collections.ICollection { Count: 0 };
            Assert.False(unset, $"the sample leaves {property.Name} at its default");
        }

        var state = new SessionState { Session = full, RotatedTo = "next-id", RotationGraceEndsAt = Created.AddMinutes(5), LeasesUntil = Created.AddSeconds(9) };
        var back = CompactStateCodec.DecodeSession(CompactStateCodec.EncodeSession(state, "session-id"), "session-id");

        Assert.Equal(full with { Metadata = ImmutableDictionary<string, string>.Empty, Payload = default }, back.Session! with { Metadata = ImmutableDictionary<string, string>.Empty, Payload = default });
        Assert.Equal(full.Metadata, back.Session!.Metadata);
        Assert.Equal(full.Payload.ToArray(), back.Session.Payload.ToArray());
        Assert.Equal(("next-id", state.RotationGraceEndsAt, state.LeasesUntil), (back.RotatedTo, back.RotationGraceEndsAt, back.LeasesUntil));
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(false, false)]
    public void Clients_read_back_as_they_were_whether_the_last_seen_one_is_the_creating_one_or_not(bool createdFrom, bool sameLastSeen)
    {
        var creating = createdFrom ? new ClientInfo("192.0.2.1", "Agent/1") : null;
        var lastSeen = sameLastSeen ? creating : new ClientInfo(null, "Agent/2");
        var summary = new SessionSummary("session-id", null, Created, Created, TimeSpan.FromMinutes(30), Created.AddHours(1), creating, lastSeen);

        Assert.Equal(summary, CompactStateCodec.DecodeSummary(CompactStateCodec.EncodeSummary(summary), "session-id"));
    }

    [Fact]
    public void A_plain_session_and_its_index_entry_take_a_few_dozen_bytes()
    {
        var client = new ClientInfo("192.0.2.1", "Mozilla/5.0 (X11; Linux x86_64)");
        var session = new SessionInfo(new string('s', 43), "user-1234", null, Created, Created, TimeSpan.FromMinutes(30), Created.AddHours(12),
            client, client, ImmutableDictionary<string, string>.Empty, 1, default);

        // The client is written once, the id not at all (it is the key): user id, client, three times and flags.
        var sessionBytes = CompactStateCodec.EncodeSession(new SessionState { Session = session }, session.SessionId).Length;
        Assert.InRange(sessionBytes, 1, 3 + 10 + 44 + 9 + 1 + 5 + 6 + 2);

        // The index entry (a hash field named by the session id): its client and times.
        Assert.InRange(CompactStateCodec.EncodeSummary(SessionSummary.From(session)).Length, 1, 2 + 44 + 9 + 1 + 5 + 6);
    }

    [Fact]
    public async Task Records_in_the_legacy_format_are_served_and_rewritten_compact_on_their_next_change()
    {
        await using var cluster = await SessionCluster.StartAsync(redis, 1);
        var created = await cluster.Store.CreateAsync("legacy-user", new SessionCreateOptions { Client = new ClientInfo("192.0.2.9", "Agent/9") }, Ct);
        var id = created.Session.SessionId;
        await cluster.Cluster.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, Ct);

        // The records as the format before the compact one held them: a hash of etag and JSON under the state key.
        var now = cluster.Time.GetUtcNow().ToString("O");
        var absolute = cluster.Time.GetUtcNow().AddHours(12).ToString("O");
        var sessionKey = $"{cluster.ServiceId}/state/{GrainTypeNames.Session}/{id}";
        var indexKey = $"{cluster.ServiceId}/state/{GrainTypeNames.UserSessions}/legacy-user";
        await redis.Database.KeyDeleteAsync([cluster.SessionKey(id), cluster.IndexKey("legacy-user")]);
        await redis.Database.HashSetAsync(sessionKey, [new("etag", "2f1d9c6a6a2b4d7f9a3e1b0c5d4e3f21"), new("data",
            $$$"""{"session":{"sessionId":"{{{id}}}","userId":"legacy-user","role":"kept","createdAt":"{{{now}}}","lastAccessedAt":"{{{now}}}","idleTimeout":"00:30:00","absoluteExpiresAt":"{{{absolute}}}","createdFrom":{"ipAddress":"192.0.2.9","userAgent":"Agent/9"},"lastSeenFrom":{"ipAddress":"192.0.2.9","userAgent":"Agent/9"},"metadata":{"plan":"pro"},"version":3}}""")]);
        await redis.Database.HashSetAsync(indexKey, [new("etag", "7c0e5d4f3a2b1c0d9e8f7a6b5c4d3e2f"), new("data",
            $$$$$"""{"sessions":{"{{{{{id}}}}}":{"sessionId":"{{{{{id}}}}}","role":"kept","createdAt":"{{{{{now}}}}}","lastAccessedAt":"{{{{{now}}}}}","idleTimeout":"00:30:00","absoluteExpiresAt":"{{{{{absolute}}}}}","createdFrom":{"ipAddress":"192.0.2.9","userAgent":"Agent/9"}}}}""")]);

        // Served as stored...
        var served = await cluster.UncachedStore.ValidateAsync(created.Token.Value, cancellationToken: Ct);
        Assert.Equal(("kept", 3L, "pro", "Agent/9"), (served?.Role, served?.Version, served?.Metadata["plan"], served?.LastSeenFrom?.UserAgent));
        Assert.Equal([id], (await cluster.Store.ListByUserAsync("legacy-user", cancellationToken: Ct)).Sessions.Select(s => s.SessionId));

        // ...and rewritten compact by the next change, the legacy key deleted.
        var updated = await cluster.UncachedStore.UpdateAsync(created.Token.Value, new SessionUpdate { Role = "changed" }, cancellationToken: Ct);
        Assert.Equal(4, updated?.Version);
        Assert.False(await redis.Database.KeyExistsAsync(sessionKey));
        Assert.Equal(4, (await cluster.StoredSessionAsync(id))?.Session?.Version);
        Assert.NotNull(await redis.Database.KeyTimeToLiveAsync(cluster.SessionKey(id)));

        var second = await cluster.Store.CreateAsync("legacy-user", cancellationToken: Ct);
        Assert.False(await redis.Database.KeyExistsAsync(indexKey));
        Assert.Equal(new[] { id, second.Session.SessionId }.Order(), (await cluster.StoredIndexAsync("legacy-user"))!.Sessions.Keys.Order());

        // Ending a session still in the legacy format deletes its legacy key.
        var third = await cluster.Store.CreateAsync("legacy-user", cancellationToken: Ct);
        await cluster.Cluster.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, Ct);
        var thirdLegacy = $"{cluster.ServiceId}/state/{GrainTypeNames.Session}/{third.Session.SessionId}";
        await redis.Database.KeyDeleteAsync(cluster.SessionKey(third.Session.SessionId));
        await redis.Database.HashSetAsync(thirdLegacy, [new("etag", "00000000000000000000000000000001"), new("data",
            $$$"""{"session":{"sessionId":"{{{third.Session.SessionId}}}","userId":"legacy-user","createdAt":"{{{now}}}","lastAccessedAt":"{{{now}}}","idleTimeout":"00:30:00","absoluteExpiresAt":"{{{absolute}}}","metadata":{},"version":1}}""")]);
        Assert.True(await cluster.Store.DeleteAsync(third.Token.Value, Ct));
        Assert.False(await redis.Database.KeyExistsAsync(thirdLegacy));
        Assert.Null(await cluster.Store.ValidateAsync(third.Token.Value, cancellationToken: Ct));
    }

    [Fact]
    public async Task A_rolling_upgrade_in_two_rolls_keeps_every_session_readable_by_every_silo()
    {
        // Roll one: every silo of the new version in the legacy format, so a silo of the old one reads all they write.
        string serviceId;
        SessionTokenCodec tokens;
        List<CreatedSession> sessions = [];
        await using (var legacy = await SessionCluster.StartAsync(redis, 2, o => o.RedisStorageFormat = RedisStorageFormat.Legacy))
        {
            (serviceId, tokens) = (legacy.ServiceId, legacy.Tokens);
            for (var i = 0; i < 10; i++)
            {
                sessions.Add(await legacy.Store.CreateAsync($"roll-user-{i % 3}", cancellationToken: Ct));
            }

            await legacy.Store.UpdateAsync(sessions[0].Token.Value, new SessionUpdate { Role = "updated" }, cancellationToken: Ct);
            sessions[1] = (await legacy.Store.RotateAsync(sessions[1].Token.Value, cancellationToken: Ct))!;
            Assert.True(await legacy.Store.DeleteAsync(sessions[2].Token.Value, Ct));
            sessions.RemoveAt(2);
        }

        Assert.Empty(await CompactKeysAsync(serviceId));

        // Roll two: silos in the compact format join while others still write the legacy one.
        var silosStarted = 0;
        await using (var mixed = await SessionCluster.StartAsync(redis, 2, configureSilo: silo =>
            {
                var format = Interlocked.Increment(ref silosStarted) == 1 ? RedisStorageFormat.Legacy : RedisStorageFormat.Compact;
                silo.Services.Configure<SessionGrainsOptions>(o => o.RedisStorageFormat = format);
            }, serviceId: serviceId, tokens: tokens))
        {
            foreach (var session in sessions)
            {
                Assert.NotNull(await mixed.UncachedStore.UpdateAsync(session.Token.Value, new SessionUpdate { Role = "mixed" }, cancellationToken: Ct));
            }

            sessions.Add(await mixed.Store.CreateAsync("roll-user-0", cancellationToken: Ct));
            Assert.Equal(2, silosStarted);
        }

        // After it, in the compact format alone: everything there, as the last writes left it.
        await using var compact = await SessionCluster.StartAsync(redis, 1, serviceId: serviceId, tokens: tokens);
        foreach (var session in sessions)
        {
            var served = await compact.UncachedStore.ValidateAsync(session.Token.Value, cancellationToken: Ct);
            Assert.NotNull(served);
            Assert.Equal(session == sessions[^1] ? null : "mixed", served.Role);
        }

        var listed = 0;
        for (var user = 0; user < 3; user++)
        {
            listed += (await compact.Store.ListByUserAsync($"roll-user-{user}", cancellationToken: Ct)).Sessions.Length;
        }

        Assert.Equal(sessions.Count, listed);
    }

    [Fact]
    public async Task For_a_user_with_5000_sessions_a_create_a_page_and_an_end_cost_redis_what_they_cost_for_a_user_with_one()
    {
        // A Redis of its own: the bytes it receives are this test's alone.
        await using var own = new RedisServer();
        await own.InitializeAsync();
        await using var cluster = await SessionCluster.StartAsync(own, 1, o => o.MaxSessionsPerUser = 6000);
        var many = new List<CreatedSession>();
        for (var batch = 0; batch < 50; batch++)
        {
            many.AddRange(await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => cluster.Store.CreateAsync("many-sessions-user", cancellationToken: Ct))));
        }

        var one = await cluster.Store.CreateAsync("one-session-user", cancellationToken: Ct);
        Assert.Equal(5000, await cluster.Store.CountForUserAsync("many-sessions-user", Ct));

        async Task<long> BytesSentToRedisAsync(string user, CreatedSession existing)
        {
            // Background writes (an expiry bucket's page of the 5,000 new ids, the counter) would count here: wait them out.
            var before = await QuietInputBytesAsync(own);
            await cluster.Store.CreateAsync(user, cancellationToken: Ct);
            Assert.NotEmpty((await cluster.Store.ListByUserAsync(user, limit: 10, cancellationToken: Ct)).Sessions);
            Assert.True(await cluster.Store.RevokeAsync(user, existing.Session.SessionId, Ct));
            return await NetInputBytesAsync(own) - before;
        }

        // Warm both users' grains and scripts, then measure: the whole index of 5,000 entries would be ~300 kB a write.
        await BytesSentToRedisAsync("one-session-user", await cluster.Store.CreateAsync("one-session-user", cancellationToken: Ct));
        await BytesSentToRedisAsync("many-sessions-user", many[0]);
        var forOne = await BytesSentToRedisAsync("one-session-user", one);
        var forMany = await BytesSentToRedisAsync("many-sessions-user", many[1]);

        TestContext.Current.TestOutputHelper?.WriteLine($"bytes sent to Redis for a create, a page and an end: {forOne:N0} (1 session), {forMany:N0} (5,000 sessions)");
        Assert.InRange(forMany, 1, forOne + 2048);
        Assert.Equal(5000, await cluster.Store.CountForUserAsync("many-sessions-user", Ct));
    }

    /// <summary>
    /// Redis' input byte count once only small writes (under 512 bytes in a quarter second, this INFO call
    /// included) have reached it for 6 s, past the counter's 5 s flush; at most 60 s.
    /// </summary>
    private static async Task<long> QuietInputBytesAsync(RedisServer server)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        var last = await NetInputBytesAsync(server);
        var stillSince = DateTime.UtcNow;
        while (DateTime.UtcNow - stillSince < TimeSpan.FromSeconds(6) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(250, TestContext.Current.CancellationToken);
            var now = await NetInputBytesAsync(server);
            if (now - last >= 512)
            {
                stillSince = DateTime.UtcNow;
            }

            last = now;
        }

        return last;
    }

    private static async Task<long> NetInputBytesAsync(RedisServer server) =>
        long.Parse((await server.Server.InfoAsync("stats")).SelectMany(g => g).First(kv => kv.Key == "total_net_input_bytes").Value, System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Keys in the compact layout (<c>{serviceId}/{type code}/...</c>) of a service.</summary>
    private async Task<List<string>> CompactKeysAsync(string serviceId)
    {
        var keys = new List<string>();
        await foreach (var key in redis.Server.KeysAsync(pattern: serviceId + "/?/*"))
        {
            keys.Add(key.ToString());
        }

        return keys;
    }
}
