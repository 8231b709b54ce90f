using System.Collections.Immutable;
using Microsoft.Extensions.DependencyInjection;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>
/// A frontend's concurrent validations travel in batches (<see cref="ValidationBatcher"/>,
/// <see cref="SessionValidationGrain"/>): each is still answered by its own session grain, slides only its
/// own session, and fails only on its own account.
/// </summary>
[Collection(RedisClusterCollection.Name)]
public sealed class ValidationBatchingTests(RedisClusterFixture fixture)
{
    internal const string BatchSize = "sessiongrains.validation.batch_size";

    private SessionCluster Cluster => fixture.Cluster;

    private ISessionStore Store => Cluster.Store;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Concurrent_validations_go_in_batches_and_each_gets_its_own_sessions_answer()
    {
        using var metrics = new MetricRecorder(Cluster.Cluster.Silos.Select(s => s.ServiceProvider));
        var created = new List<CreatedSession>();
        for (var i = 0; i < 12; i++)
        {
            created.Add(await Store.CreateAsync($"batch-{i % 4}-" + Guid.NewGuid().ToString("N")[..8], new SessionCreateOptions
            {
                Metadata = ImmutableDictionary<string, string>.Empty.Add("n", i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            }, Ct));
        }

        var ended = created.Where((_, i) => i % 3 == 0).ToHashSet();
        foreach (var session in ended)
        {
            Assert.True(await Store.DeleteAsync(session.Token.Value, Ct));
        }

        Cluster.Time.Advance(TimeSpan.FromMinutes(1));
        var slidTo = Cluster.Time.GetUtcNow();

        // 20 rounds of every token, all at once: far more than the batches the client keeps in flight.
        var calls = Enumerable.Range(0, 20).SelectMany(_ => created).Select(async session =>
            (session, answer: await Store.ValidateAsync(session.Token.Value, cancellationToken: Ct))).ToList();
        var answers = await Task.WhenAll(calls);

        foreach (var (session, answer) in answers)
        {
            if (ended.Contains(session))
            {
                Assert.Null(answer);
                continue;
            }

            Assert.NotNull(answer);
            Assert.Equal(session.Session.SessionId, answer.SessionId);
            Assert.Equal(session.Session.UserId, answer.UserId);
            Assert.Equal(session.Session.Metadata["n"], answer.Metadata["n"]);
            Assert.Equal(slidTo, answer.LastAccessedAt);
        }

        // Lone validations skip the batch grain, so a recorded batch means validations shared a message.
        Assert.True(metrics.Total(BatchSize) >= 2, $"No validation batch reached the silos ({metrics.Total(BatchSize)} batched).");
    }

    [Fact]
    public async Task A_batch_answers_a_token_of_an_ended_session_with_null_not_with_a_neighbours_session()
    {
        var user = "neighbours-" + Guid.NewGuid().ToString("N")[..8];
        var live = await Store.CreateAsync(user, cancellationToken: Ct);
        var gone = await Store.CreateAsync(user, cancellationToken: Ct);
        Assert.Equal(1, await Store.DeleteAllForUserAsync(user, exceptSessionId: live.Session.SessionId, Ct));

        var answers = await Task.WhenAll(Enumerable.Range(0, 64).Select(i =>
            Store.ValidateAsync((i % 2 == 0 ? live : gone).Token.Value, cancellationToken: Ct)));

        for (var i = 0; i < answers.Length; i++)
        {
            Assert.Equal(i % 2 == 0 ? live.Session.SessionId : null, answers[i]?.SessionId);
        }
    }
}

/// <summary>One session's failure inside a batch is that caller's alone.</summary>
public sealed class ValidationBatchFailureTests : IAsyncLifetime
{
    private const int BurstThreshold = 5;

    private SessionCluster _cluster = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _cluster = await SessionCluster.StartAsync(redis: null, 1, o =>
    {
        o.Signals.Burst = SignalPolicy.Throttle;
        o.Signals.BurstThreshold = BurstThreshold;
    });

    public async ValueTask DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task A_throttled_session_in_a_batch_fails_alone_with_its_own_retry_after()
    {
        using var metrics = new MetricRecorder(_cluster.Cluster.Silos.Select(s => s.ServiceProvider));
        var hot = await _cluster.Store.CreateAsync("hot-" + Guid.NewGuid().ToString("N")[..8], cancellationToken: Ct);
        var calm = new List<CreatedSession>();
        for (var i = 0; i < 20; i++)
        {
            calm.Add(await _cluster.Store.CreateAsync($"calm-{i}-" + Guid.NewGuid().ToString("N")[..8], cancellationToken: Ct));
        }

        // Thirty validations of one session among forty of others, sent together: the hot session is
        // allowed its threshold and throttled after it; the others ride in the same batches untouched.
        var hotCalls = Enumerable.Range(0, 30).Select(_ => Outcome(hot)).ToList();
        var calmCalls = calm.Concat(calm).Select(Outcome).ToList();
        var hotOutcomes = await Task.WhenAll(hotCalls);
        var calmOutcomes = await Task.WhenAll(calmCalls);

        Assert.Equal(BurstThreshold, hotOutcomes.Count(o => o.Session is not null));
        var throttled = hotOutcomes.Select(o => o.Failure).OfType<SessionThrottledException>().ToList();
        Assert.Equal(30 - BurstThreshold, throttled.Count);
        Assert.All(throttled, t => Assert.InRange(t.RetryAfter, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10)));
        Assert.All(calmOutcomes, o => Assert.Null(o.Failure));
        Assert.All(calmOutcomes, o => Assert.NotNull(o.Session));
        Assert.True(metrics.Total(ValidationBatchingTests.BatchSize) >= 2, "The validations were not batched.");
    }

    private async Task<(SessionInfo? Session, Exception? Failure)> Outcome(CreatedSession session)
    {
        try
        {
            return (await _cluster.Store.ValidateAsync(session.Token.Value, cancellationToken: Ct), null);
        }
        catch (SessionThrottledException exception)
        {
            return (null, exception);
        }
    }
}

/// <summary>
/// Who batches by default (<c>AddSessionStore</c>): a frontend connected to one silo, where the batch's
/// sessions are all local to the silo that receives it; not one connected to several (the gateway would
/// re-send most of the batch to other silos one by one); never a store inside a silo.
/// </summary>
public sealed class ValidationBatchingDefaultTests
{
    private static readonly string TokenKeys = "k1:" + Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(1, true)]
    [InlineData(2, false)]
    public async Task A_frontend_batches_validations_only_while_it_is_connected_to_a_single_silo(short silos, bool batches)
    {
        await using var cluster = await SessionCluster.StartAsync(redis: null, silos, configureClient: services => services.AddSessionStore(o => o.TokenKeys = TokenKeys));
        var clientServices = cluster.Cluster.Client.ServiceProvider;
        var gateways = clientServices.GetRequiredService<GatewayCount>();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (gateways.IsOne != (silos == 1) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, Ct); // the client opens its other gateway connections after its first
        }

        Assert.Equal(silos == 1, gateways.IsOne);
        var store = clientServices.GetRequiredService<ISessionStore>();
        Assert.IsType<ValidationBatcher>(ToGrains(store)); // it decides per validation, by the gateways
        var batched = await BatchedAsync(cluster, store);

        Assert.Equal(batches, batched > 0);
    }

    [Fact]
    public async Task A_store_inside_a_silo_never_batches()
    {
        await using var cluster = await SessionCluster.StartAsync(
            redis: null,
            1,
            configureSilo: silo => silo.Services.AddSessionStore(o => o.TokenKeys = TokenKeys),
            configureClient: services => services.AddSessionStore(o => o.TokenKeys = TokenKeys));
        var inSilo = cluster.Cluster.Silos[0].ServiceProvider.GetRequiredService<ISessionStore>();

        Assert.IsType<DirectValidation>(ToGrains(inSilo));
        Assert.Equal(0, await BatchedAsync(cluster, inSilo));
    }

    [Theory]
    [InlineData(false, null, typeof(ValidationBatcher))]
    [InlineData(false, true, typeof(ValidationBatcher))]
    [InlineData(false, false, typeof(DirectValidation))]
    [InlineData(true, null, typeof(DirectValidation))]
    [InlineData(true, false, typeof(DirectValidation))]
    [InlineData(true, true, typeof(ValidationBatcher))]
    public void The_validation_path_is_chosen_once_from_where_the_store_runs_and_the_batching_setting(bool inSilo, bool? batchValidations, Type path)
    {
        var options = new SessionStoreOptions { BatchValidations = batchValidations, NearCache = { Enabled = false } };
        var chosen = ValidationPaths.Choose(grains: null!, inSilo, options, new GatewayCount(), TimeProvider.System, new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());

        Assert.IsType(path, chosen);
    }

    [Fact]
    public void Adding_the_store_twice_registers_one_gateway_observer()
    {
        var services = new ServiceCollection().AddSessionStore().AddSessionStore();

        Assert.Single(services, service => service.ServiceType == typeof(IClusterConnectionStatusObserver));
        Assert.Single(services, service => service.ServiceType == typeof(GatewayCount));
    }

    /// <summary>Validations batched while <paramref name="store"/> validates 20 sessions ten times each, all at once.</summary>
    /// <summary>How a store's validations reach their grains, behind its near cache.</summary>
    private static IValidationPath ToGrains(ISessionStore store) =>
        ((SessionStore)store).Validations is SessionNearCache cache ? cache.GrainPath : ((SessionStore)store).Validations;

    private static async Task<long> BatchedAsync(SessionCluster cluster, ISessionStore store)
    {
        var frontend = cluster.Cluster.Client.ServiceProvider.GetRequiredService<ISessionStore>();
        var tokens = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            tokens.Add((await frontend.CreateAsync($"defaults-{i}", cancellationToken: Ct)).Token.Value);
        }

        using var metrics = new MetricRecorder(cluster.Cluster.Silos.Select(s => s.ServiceProvider));
        var answers = await Task.WhenAll(Enumerable.Range(0, 10).SelectMany(_ => tokens).Select(t => store.ValidateAsync(t, cancellationToken: Ct)));
        Assert.All(answers, Assert.NotNull);
        return metrics.Total(ValidationBatchingTests.BatchSize);
    }
}
