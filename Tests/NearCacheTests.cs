using System.Diagnostics;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>
/// The frontend near cache and the leases behind it, on two silos over Redis with one-second leases: three
/// frontends (each a cache of its own, so a lease holder of its own) and the fake clock for expiry.
/// </summary>
public sealed class NearCacheTests(RedisServer redis) : IAsyncLifetime
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(1);

    private SessionCluster _cluster = null!;
    private readonly List<(ISessionStore Store, SessionNearCache Cache, CountingPath Grains)> _frontends = [];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _cluster = await SessionCluster.StartAsync(redis, 2, o => o.LeaseDuration = Lease);
        for (var i = 0; i < 3; i++)
        {
            _frontends.Add(NewFrontend());
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var frontend in _frontends)
        {
            frontend.Cache.Dispose();
        }

        await _cluster.DisposeAsync();
    }

    private (ISessionStore Store, SessionNearCache Cache, CountingPath Grains) NewFrontend(NearCacheOptions? options = null)
    {
        var grains = new CountingPath(new ValidationBatcher(_cluster.Cluster.Client, () => true));
        var cache = new SessionNearCache(_cluster.Cluster.Client, grains, options ?? new NearCacheOptions(), _cluster.Time, SessionCluster.Meters);
        return (new SessionStore(_cluster.Cluster.Client, _cluster.Tokens, cache), cache, grains);
    }

    private ISessionStore Writer => _cluster.UncachedStore;

    private static string NewUser() => "near-" + Guid.NewGuid().ToString("N")[..10];

    /// <summary>A session every frontend has validated, so each holds it with a lease.</summary>
    private async Task<CreatedSession> HeldEverywhereAsync(SessionCreateOptions? options = null, string? user = null)
    {
        var created = await Writer.CreateAsync(user ?? NewUser(), options, Ct);
        foreach (var (store, _, _) in _frontends)
        {
            Assert.NotNull(await store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
            Assert.NotNull(await store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
        }

        return created;
    }

    [Fact]
    public async Task A_session_in_use_is_answered_from_memory_and_slides_there()
    {
        var created = await Writer.CreateAsync(NewUser(), cancellationToken: Ct);
        var (store, _, grains) = _frontends[0];

        var first = await store.ValidateAsync(created.Token.Value, cancellationToken: Ct);
        _cluster.Time.Advance(TimeSpan.FromSeconds(3));
        var second = await store.ValidateAsync(created.Token.Value, cancellationToken: Ct);

        Assert.Equal(1, grains.Validations);
        Assert.Equal(first!.LastAccessedAt + TimeSpan.FromSeconds(3), second!.LastAccessedAt);
        Assert.Equal(first.Version, second.Version);
    }

    public static TheoryData<string> Writes => ["update", "rotate", "delete", "revoke", "delete-all", "evict"];

    [Theory]
    [MemberData(nameof(Writes))]
    public async Task After_a_change_returns_no_frontend_answers_the_old_session(string write)
    {
        var user = NewUser();
        var created = await HeldEverywhereAsync(new SessionCreateOptions { MaxSessionsPerUser = 1 }, user);
        var token = created.Token.Value;
        var watch = Stopwatch.StartNew();
        switch (write)
        {
            case "update":
                await Writer.UpdateAsync(token, new SessionUpdate { Role = "changed" }, cancellationToken: Ct);
                break;
            case "rotate":
                await Writer.RotateAsync(token, cancellationToken: Ct);
                break;
            case "delete":
                await Writer.DeleteAsync(token, Ct);
                break;
            case "revoke":
                await Writer.RevokeAsync(user, created.Session.SessionId, Ct);
                break;
            case "delete-all":
                await Writer.DeleteAllForUserAsync(user, cancellationToken: Ct);
                break;
            case "evict":
                await Writer.CreateAsync(user, new SessionCreateOptions { MaxSessionsPerUser = 1 }, Ct);
                break;
        }

        // Every holder answered its recall: the change did not wait for any lease to run out.
        Assert.True(watch.Elapsed < Lease, $"The {write} took {watch.Elapsed}, as long as a lease.");
        foreach (var (store, _, _) in _frontends)
        {
            var seen = await store.ValidateAsync(token, cancellationToken: Ct);
            if (write == "update")
            {
                Assert.Equal(("changed", 2L), (seen!.Role, seen.Version));
            }
            else
            {
                Assert.Null(seen);
            }
        }
    }

    [Fact]
    public async Task An_update_through_a_frontend_leaves_the_new_version_in_its_memory_and_recalls_the_others()
    {
        var created = await HeldEverywhereAsync();
        var (updater, _, grains) = _frontends[0];
        var asked = grains.Validations;

        var updated = await updater.UpdateAsync(created.Token.Value, new SessionUpdate { Role = "changed" }, expectedVersion: 1, Ct);
        var seen = await updater.ValidateAsync(created.Token.Value, cancellationToken: Ct);

        Assert.Equal(("changed", 2L), (seen!.Role, seen.Version));
        Assert.Equal(updated!.Version, seen.Version);
        Assert.Equal(asked, grains.Validations); // answered from the lease that came with the update
        foreach (var (store, _, _) in _frontends.Skip(1))
        {
            Assert.Equal(2L, (await store.ValidateAsync(created.Token.Value, cancellationToken: Ct))!.Version);
        }
    }

    [Fact]
    public async Task Validations_racing_updates_through_the_same_frontend_never_see_a_version_older_than_a_returned_update()
    {
        // Answers to validations sent before an update may arrive after it: none of them may be kept over the update's.
        var created = await Writer.CreateAsync(NewUser(), cancellationToken: Ct);
        var token = created.Token.Value;
        var (store, _, _) = _frontends[0];
        long returned = 0;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var stale = new List<string>();
        var validators = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var floor = Volatile.Read(ref returned);
                var seen = await store.ValidateAsync(token, cancellationToken: Ct);
                if (seen!.Version < floor)
                {
                    lock (stale)
                    {
                        stale.Add($"version {seen.Version} after version {floor} had returned");
                    }
                }
            }
        }, Ct)).ToList();

        for (var i = 0; i < 200; i++)
        {
            var updated = await (i % 3 == 0 ? Writer : store).UpdateAsync(token, new SessionUpdate { Role = "r" + i }, cancellationToken: Ct);
            Volatile.Write(ref returned, updated!.Version);
        }

        await stop.CancelAsync();
        await Task.WhenAll(validators);
        Assert.Empty(stale);
        Assert.Equal(201L, (await store.ValidateAsync(token, cancellationToken: Ct))!.Version);
    }

    [Fact]
    public async Task A_session_used_only_through_one_frontends_memory_does_not_expire_at_its_grain()
    {
        var created = await Writer.CreateAsync(NewUser(), new SessionCreateOptions { IdleTimeout = TimeSpan.FromMinutes(10) }, Ct);
        var (first, _, _) = _frontends[0];
        var (second, _, _) = _frontends[1];
        Assert.NotNull(await first.ValidateAsync(created.Token.Value, cancellationToken: Ct));

        // Answered from memory at +6 min: the grain has not heard of it yet.
        _cluster.Time.Advance(TimeSpan.FromMinutes(6));
        Assert.NotNull(await first.ValidateAsync(created.Token.Value, cancellationToken: Ct));

        // At +12 min the grain's own last access says expired; the lease holder's report says used at +6.
        _cluster.Time.Advance(TimeSpan.FromMinutes(6));
        Assert.NotNull(await second.ValidateAsync(created.Token.Value, cancellationToken: Ct));
    }

    [Fact]
    public async Task A_session_expires_on_the_frontends_clock_to_the_tick()
    {
        var created = await Writer.CreateAsync(NewUser(), new SessionCreateOptions { IdleTimeout = TimeSpan.FromSeconds(20) }, Ct);
        var (store, _, grains) = _frontends[0];
        Assert.NotNull(await store.ValidateAsync(created.Token.Value, cancellationToken: Ct));

        _cluster.Time.Advance(TimeSpan.FromSeconds(20) - TimeSpan.FromTicks(1));
        Assert.NotNull(await store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
        Assert.Equal(1, grains.Validations);

        _cluster.Time.Advance(TimeSpan.FromSeconds(20));
        Assert.Null(await store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
    }

    [Fact]
    public async Task A_request_from_another_client_goes_to_the_grain_and_the_other_copies_are_recalled()
    {
        var home = new ClientInfo("198.51.100.10", "Firefox/140");
        var away = new ClientInfo("203.0.113.9", "Firefox/140");
        var created = await Writer.CreateAsync(NewUser(), new SessionCreateOptions { Client = home }, Ct);
        var (first, _, _) = _frontends[0];
        var (second, _, secondGrains) = _frontends[1];
        Assert.NotNull(await second.ValidateAsync(created.Token.Value, home, Ct));

        var moved = await first.ValidateAsync(created.Token.Value, away, Ct);
        var back = await second.ValidateAsync(created.Token.Value, home, Ct);

        Assert.Equal(SessionSignals.IpChanged, moved!.Signals);
        Assert.Equal((SessionSignals.IpChanged, 2), (back!.Signals, back.IpChanges));
        Assert.Equal(2, secondGrains.Validations);
    }

    [Fact]
    public async Task A_change_waits_for_a_holder_that_does_not_answer_until_its_lease_has_run_out()
    {
        var created = await Writer.CreateAsync(NewUser(), cancellationToken: Ct);
        var silent = _cluster.Cluster.Client.CreateObjectReference<ISessionCacheObserver>(new SilentHolder());
        var granted = await _cluster.Grains.Session(created.Session.SessionId).ValidateLeasedAsync(null, new LeaseRequest(silent, default));
        Assert.Equal(Lease, granted.Lease);

        var watch = Stopwatch.StartNew();
        Assert.True(await Writer.DeleteAsync(created.Token.Value, Ct));

        Assert.InRange(watch.Elapsed, Lease - TimeSpan.FromMilliseconds(200), Lease + TimeSpan.FromSeconds(2));
    }

    [Fact]
    public async Task A_new_activation_waits_out_the_leases_its_predecessor_may_have_lent()
    {
        var created = await Writer.CreateAsync(NewUser(), cancellationToken: Ct);
        var key = _cluster.SessionKey(created.Session.SessionId);
        var silent = _cluster.Cluster.Client.CreateObjectReference<ISessionCacheObserver>(new SilentHolder());
        var grain = _cluster.Grains.Session(created.Session.SessionId);
        await grain.ValidateLeasedAsync(null, new LeaseRequest(silent, default));
        var leased = await _cluster.Redis!.Database.StringGetAsync(key);
        Assert.NotNull((await _cluster.StoredSessionAsync(created.Session.SessionId))?.LeasesUntil);

        // A graceful deactivation recalls (waiting the silent holder out) and clears the mark; a crash leaves it.
        // Putting the record back as it was when the lease was lent stands in for the crash.
        await grain.Cast<Orleans.Core.Internal.IGrainManagementExtension>().DeactivateOnIdle(Ct);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await _cluster.StoredSessionAsync(created.Session.SessionId))?.LeasesUntil is not null && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20, Ct);
        }

        await _cluster.Redis.Database.StringSetAsync(key, leased, expiry: null, keepTtl: true);
        var watch = Stopwatch.StartNew();
        var updated = await Writer.UpdateAsync(created.Token.Value, new SessionUpdate { Role = "after" }, cancellationToken: Ct);

        Assert.Equal("after", updated!.Role);
        Assert.InRange(watch.Elapsed, Lease - TimeSpan.FromMilliseconds(300), Lease + TimeSpan.FromSeconds(2));
    }

    [Fact]
    public async Task A_recall_that_overtakes_the_answer_carrying_a_lease_wins()
    {
        var created = await Writer.CreateAsync(NewUser(), cancellationToken: Ct);
        var gate = new TaskCompletionSource();
        var late = new LateAnswerPath(new DirectValidation(_cluster.Cluster.Client), gate.Task);
        using var cache = new SessionNearCache(_cluster.Cluster.Client, late, new NearCacheOptions(), _cluster.Time, SessionCluster.Meters);
        var store = new SessionStore(_cluster.Cluster.Client, _cluster.Tokens, cache);

        var validation = store.ValidateAsync(created.Token.Value, cancellationToken: Ct);
        await late.Answered.WaitAsync(Ct);
        await ((ISessionCacheObserver)cache).RecallAsync(created.Session.SessionId);
        gate.SetResult();
        Assert.NotNull(await validation);

        Assert.Equal(0, cache.Count);
        Assert.False(cache.TryAnswer(created.Session.SessionId, null, out _));
    }

    [Fact]
    public async Task The_cache_keeps_to_its_entry_bound_least_recently_used_first_out()
    {
        var (store, cache, _) = NewFrontend(new NearCacheOptions { MaxEntries = 10 });
        using var owned = cache;
        var user = NewUser();
        var sessions = new List<CreatedSession>();
        for (var i = 0; i < 30; i++)
        {
            var created = await Writer.CreateAsync(user, cancellationToken: Ct);
            sessions.Add(created);
            Assert.NotNull(await store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
        }

        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (cache.Count > 10 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20, Ct);
        }

        Assert.InRange(cache.Count, 1, 10);
        Assert.True(cache.TryAnswer(sessions[^1].Session.SessionId, null, out _), "The most recently used session was evicted.");
        Assert.False(cache.TryAnswer(sessions[0].Session.SessionId, null, out _), "The least recently used session was kept.");
    }

    [Fact]
    public async Task Renewals_carry_the_answers_from_memory_to_the_grain_within_a_lease()
    {
        var created = await Writer.CreateAsync(NewUser(), cancellationToken: Ct);
        var (store, _, _) = _frontends[2];
        Assert.NotNull(await store.ValidateAsync(created.Token.Value, cancellationToken: Ct));
        _cluster.Time.Advance(TimeSpan.FromSeconds(30));
        var answered = await store.ValidateAsync(created.Token.Value, cancellationToken: Ct);

        var deadline = DateTime.UtcNow + 2 * Lease + TimeSpan.FromSeconds(2);
        SessionInfo? atGrain;
        do
        {
            await Task.Delay(50, Ct);
            atGrain = await _cluster.Grains.Session(created.Session.SessionId).PeekAsync();
        }
        while (atGrain!.LastAccessedAt < answered!.LastAccessedAt && DateTime.UtcNow < deadline);

        Assert.Equal(answered.LastAccessedAt, atGrain.LastAccessedAt);
    }

    /// <summary>The way to the grains, counting the validations that take it.</summary>
    private sealed class CountingPath(IValidationPath inner) : IValidationPath
    {
        private int _validations;

        public int Validations => Volatile.Read(ref _validations);

        public Task<SessionInfo?> ValidateAsync(string sessionId, ClientInfo? client)
        {
            Interlocked.Increment(ref _validations);
            return inner.ValidateAsync(sessionId, client);
        }

        public Task<LeasedValidation> ValidateLeasedAsync(string sessionId, ClientInfo? client, LeaseRequest lease)
        {
            if (!lease.Renewal)
            {
                Interlocked.Increment(ref _validations);
            }

            return inner.ValidateLeasedAsync(sessionId, client, lease);
        }
    }

    /// <summary>A way to the grains whose answers arrive only when <paramref name="release"/> completes: a recall overtakes them.</summary>
    private sealed class LateAnswerPath(IValidationPath inner, Task release) : IValidationPath
    {
        private readonly TaskCompletionSource _answered = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Answered => _answered.Task;

        public Task<SessionInfo?> ValidateAsync(string sessionId, ClientInfo? client) => inner.ValidateAsync(sessionId, client);

        public async Task<LeasedValidation> ValidateLeasedAsync(string sessionId, ClientInfo? client, LeaseRequest lease)
        {
            var answer = await inner.ValidateLeasedAsync(sessionId, client, lease);
            _answered.TrySetResult();
            await release;
            return answer;
        }
    }

    /// <summary>A lease holder that never answers a recall: a frozen or cut-off frontend.</summary>
    private sealed class SilentHolder : ISessionCacheObserver
    {
        public Task<LeaseReport> RecallAsync(string sessionId) => new TaskCompletionSource<LeaseReport>().Task;
    }
}
