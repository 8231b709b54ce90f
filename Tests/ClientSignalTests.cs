using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>IP, User-Agent and activity signals under the default (warn) policies, with the fake clock, through a frontend's near cache.</summary>
[Collection(RedisClusterCollection.Name)]
public class ClientSignalTests(RedisClusterFixture fixture)
{
    protected SessionCluster Cluster => fixture.Cluster;

    protected virtual ISessionStore Store => Cluster.Store;

    /// <summary>Whether <see cref="Store"/> answers from a near cache's memory.</summary>
    protected virtual bool AnswersFromMemory => true;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private Task<CreatedSession> CreateAsync(string ip = "198.51.100.10", string agent = "Firefox/140") =>
        Store.CreateAsync("signals-" + Guid.NewGuid().ToString("N")[..8], new SessionCreateOptions { Client = new ClientInfo(ip, agent) }, Ct);

    [Fact]
    public async Task A_move_inside_the_same_ipv4_24_or_ipv6_64_is_not_flagged()
    {
        var v4 = await CreateAsync("198.51.100.10");
        var moved = await Store.ValidateAsync(v4.Token.Value, new ClientInfo("198.51.100.200", "Firefox/140"), Ct);
        Assert.Equal(SessionSignals.None, moved!.Signals);
        Assert.Equal(0, moved.IpChanges);

        var v6 = await CreateAsync("2001:db8:1:2::10");
        var moved6 = await Store.ValidateAsync(v6.Token.Value, new ClientInfo("2001:db8:1:2:ffff::1", "Firefox/140"), Ct);
        Assert.Equal(SessionSignals.None, moved6!.Signals);
    }

    [Fact]
    public async Task A_new_network_is_reported_counted_and_allowed_under_warn()
    {
        var created = await CreateAsync("198.51.100.10");

        var changed = await Store.ValidateAsync(created.Token.Value, new ClientInfo("203.0.113.9", "Firefox/140"), Ct);
        Assert.Equal(SessionSignals.IpChanged, changed!.Signals);
        Assert.Equal(1, changed.IpChanges);
        Assert.Equal("203.0.113.9", changed.LastSeenFrom?.IpAddress);
        Assert.Equal("198.51.100.10", changed.CreatedFrom?.IpAddress);

        var again = await Store.ValidateAsync(created.Token.Value, new ClientInfo("203.0.113.9", "Firefox/140"), Ct);
        Assert.Equal(SessionSignals.None, again!.Signals);
        Assert.Equal(1, again.IpChanges);

        var v6 = await Store.ValidateAsync(created.Token.Value, new ClientInfo("2001:db8:9::1", "Firefox/140"), Ct);
        Assert.Equal(SessionSignals.IpChanged, v6!.Signals);
        Assert.Equal(2, v6.IpChanges);
    }

    [Fact]
    public async Task A_new_user_agent_is_reported_and_counted_under_warn()
    {
        var created = await CreateAsync(agent: "Firefox/140");

        var changed = await Store.ValidateAsync(created.Token.Value, new ClientInfo("198.51.100.10", "curl/8"), Ct);

        Assert.Equal(SessionSignals.UserAgentChanged, changed!.Signals);
        Assert.Equal(1, changed.UserAgentChanges);
        Assert.Equal("curl/8", changed.LastSeenFrom?.UserAgent);
    }

    [Fact]
    public async Task More_than_fifty_validations_in_ten_seconds_are_a_burst_and_the_window_slides()
    {
        var created = await CreateAsync();
        var client = new ClientInfo("198.51.100.10", "Firefox/140");
        using var metrics = new MetricRecorder(Cluster.Cluster.Silos.Select(s => s.ServiceProvider));
        for (var i = 0; i < 50; i++)
        {
            Assert.Equal(SessionSignals.None, (await Store.ValidateAsync(created.Token.Value, client, Ct))!.Signals);
        }

        if (AnswersFromMemory)
        {
            // A burst that only warns is raised by the lease renewal that reports the answers from memory: within one lease.
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while ((await Store.ValidateAsync(created.Token.Value, client, Ct))!.Signals == SessionSignals.None && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, Ct);
            }
        }

        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(SessionSignals.RequestBurst, (await Store.ValidateAsync(created.Token.Value, client, Ct))!.Signals);
        }

        // Every request of the burst is flagged, but the burst is counted (and logged) once.
        Assert.Equal(1, metrics.Total("sessiongrains.signals", "signal=RequestBurst"));

        Cluster.Time.Advance(TimeSpan.FromSeconds(11));
        Assert.Equal(SessionSignals.None, (await Store.ValidateAsync(created.Token.Value, client, Ct))!.Signals);
    }

    [Fact]
    public async Task More_than_five_networks_in_a_minute_are_flagged()
    {
        var created = await CreateAsync("10.0.0.1");
        SessionInfo? last = null;
        for (var i = 1; i <= 6; i++)
        {
            last = await Store.ValidateAsync(created.Token.Value, new ClientInfo($"10.0.{i}.1", "Firefox/140"), Ct);
            Assert.Equal(i < 6 ? SessionSignals.IpChanged : SessionSignals.IpChanged | SessionSignals.ManyNetworks, last!.Signals);
        }

        Cluster.Time.Advance(TimeSpan.FromMinutes(2));
        last = await Store.ValidateAsync(created.Token.Value, new ClientInfo("10.0.6.1", "Firefox/140"), Ct);
        Assert.Equal(SessionSignals.None, last!.Signals);
    }
}

/// <summary>The same signal tests with every validation reaching its grain.</summary>
[Collection(RedisClusterCollection.Name)]
public sealed class ClientSignalTestsWithoutNearCache(RedisClusterFixture fixture) : ClientSignalTests(fixture)
{
    protected override ISessionStore Store => Cluster.UncachedStore;

    protected override bool AnswersFromMemory => false;
}

/// <summary>The strict policies: revoke on a new User-Agent or many networks, throttle bursts and fast creation (through a near cache).</summary>
public class StrictSignalPolicyTests : IAsyncLifetime
{
    private SessionCluster _cluster = null!;

    protected virtual ISessionStore Store => _cluster.Store;

    protected SessionCluster Cluster => _cluster;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly RecordingLog _log = new(LogLevel.Information);

    public async ValueTask InitializeAsync() => _cluster = await SessionCluster.StartAsync(redis: null, 1, o =>
    {
        o.Signals.UserAgentChange = SignalPolicy.Revoke;
        o.Signals.ManyNetworks = SignalPolicy.Revoke;
        o.Signals.NetworksThreshold = 3;
        o.Signals.Burst = SignalPolicy.Throttle;
        o.Signals.BurstThreshold = 5;
        o.Signals.CreationBurst = SignalPolicy.Throttle;
        o.Signals.CreationBurstThreshold = 5;
        o.Signals.CreationCooldown = TimeSpan.FromMinutes(5);
    }, configureSilo: silo => silo.Services.AddSingleton<ILoggerProvider>(_log));

    public async ValueTask DisposeAsync() => await _cluster.DisposeAsync();

    private Task<CreatedSession> CreateAsync(string user) =>
        Store.CreateAsync(user, new SessionCreateOptions { Client = new ClientInfo("198.51.100.10", "Firefox/140") }, Ct);

    [Fact]
    public async Task A_new_user_agent_revokes_the_session_and_it_leaves_the_index()
    {
        var user = "ua-" + Guid.NewGuid().ToString("N")[..8];
        var created = await CreateAsync(user);

        Assert.Null(await Store.ValidateAsync(created.Token.Value, new ClientInfo("198.51.100.10", "curl/8"), Ct));

        Assert.Null(await Store.ValidateAsync(created.Token.Value, new ClientInfo("198.51.100.10", "Firefox/140"), Ct));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (await Store.CountForUserAsync(user, Ct) > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, Ct);
        }

        Assert.Equal(0, await Store.CountForUserAsync(user, Ct));
    }

    [Fact]
    public async Task An_ip_change_alone_only_warns()
    {
        var created = await CreateAsync("ip-" + Guid.NewGuid().ToString("N")[..8]);
        var changed = await Store.ValidateAsync(created.Token.Value, new ClientInfo("203.0.113.1", "Firefox/140"), Ct);
        Assert.Equal(SessionSignals.IpChanged, changed!.Signals);
    }

    [Fact]
    public async Task Many_networks_revoke_the_session()
    {
        var created = await CreateAsync("nets-" + Guid.NewGuid().ToString("N")[..8]);
        Assert.NotNull(await Store.ValidateAsync(created.Token.Value, new ClientInfo("10.1.0.1", "Firefox/140"), Ct));
        Assert.NotNull(await Store.ValidateAsync(created.Token.Value, new ClientInfo("10.2.0.1", "Firefox/140"), Ct));
        Assert.NotNull(await Store.ValidateAsync(created.Token.Value, new ClientInfo("10.3.0.1", "Firefox/140"), Ct));

        Assert.Null(await Store.ValidateAsync(created.Token.Value, new ClientInfo("10.4.0.1", "Firefox/140"), Ct));
        Assert.Null(await Store.ValidateAsync(created.Token.Value, new ClientInfo("10.3.0.1", "Firefox/140"), Ct));
    }

    [Fact]
    public async Task A_burst_is_throttled_until_the_window_has_room_and_the_session_survives()
    {
        var created = await CreateAsync("burst-" + Guid.NewGuid().ToString("N")[..8]);
        var client = new ClientInfo("198.51.100.10", "Firefox/140");
        for (var i = 0; i < 5; i++)
        {
            Assert.NotNull(await Store.ValidateAsync(created.Token.Value, client, Ct));
        }

        var throttled = await Assert.ThrowsAsync<SessionThrottledException>(() => Store.ValidateAsync(created.Token.Value, client, Ct));
        Assert.InRange(throttled.RetryAfter, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));

        _cluster.Time.Advance(TimeSpan.FromSeconds(11));
        Assert.NotNull(await Store.ValidateAsync(created.Token.Value, client, Ct));
    }

    [Fact]
    public async Task Sessions_created_too_fast_for_one_user_are_refused_for_the_cool_down()
    {
        var user = "stuffed-" + Guid.NewGuid().ToString("N")[..8];
        for (var i = 0; i < 5; i++)
        {
            await CreateAsync(user);
        }

        var refused = await Assert.ThrowsAsync<SessionThrottledException>(() => CreateAsync(user));
        Assert.Equal(TimeSpan.FromMinutes(5), refused.RetryAfter);

        // One warning an operator can act on: it names the user by a hash of the id (not the id, which may be an e-mail address).
        var warning = Assert.Single(_log.Entries, e => e.Id == 2002 && e.Message.Contains(SessionIds.UserForLog(user), StringComparison.Ordinal));
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.DoesNotContain(user, warning.Message, StringComparison.Ordinal);
        Assert.Equal(5, await Store.CountForUserAsync(user, Ct));
        await CreateAsync("bystander-" + Guid.NewGuid().ToString("N")[..8]); // other users are not affected

        _cluster.Time.Advance(TimeSpan.FromMinutes(4));
        await Assert.ThrowsAsync<SessionThrottledException>(() => CreateAsync(user));
        _cluster.Time.Advance(TimeSpan.FromMinutes(1));
        Assert.NotNull(await CreateAsync(user));
    }
}

/// <summary>The strict policies with every validation reaching its grain.</summary>
public sealed class StrictSignalPolicyTestsWithoutNearCache : StrictSignalPolicyTests
{
    protected override ISessionStore Store => Cluster.UncachedStore;
}
