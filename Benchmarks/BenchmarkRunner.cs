using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace SessionGrains.Benchmarks;

/// <summary>
/// Runs every workload against every target that supports it, in one run on one redis-server and one
/// PostgreSQL server (each target in its own database or key prefix, so nobody flushes the cluster's
/// membership table), and prints and saves the table.
/// </summary>
internal static class BenchmarkRunner
{
    public static async Task<int> MainAsync(string[] args)
    {
        if (args is [FrontendProcess.Argument])
        {
            return await FrontendProcess.RunAsync();
        }

        BenchmarkOptions options;
        try
        {
            options = BenchmarkOptions.Parse(args);
        }
        catch (ArgumentException exception)
        {
            Console.Error.WriteLine(exception.Message);
            return 2;
        }

        if (options.ScaleSessions is { } scale)
        {
            Console.WriteLine(await ScaleRunner.RunAsync(scale, options.ResultsDirectory, Console.Out));
            return 0;
        }

        var results = await RunAsync(options, Console.Out);
        BenchmarkReport.Write(results, options, Console.Out);
        return 0;
    }

    public static async Task<IReadOnlyList<Measurement>> RunAsync(BenchmarkOptions options, TextWriter log)
    {
        var total = Stopwatch.StartNew();
        await using var redis = await RedisProcess.StartAsync();
        await using var postgres = await PostgresProcess.StartAsync(installMissing: true);
        var seed = new SeedRedisStore(redis.Connection.GetDatabase(1), sliding: false);
        var seedSliding = new SeedRedisStore(redis.Connection.GetDatabase(1), sliding: true);
        await using var redisCache = new RedisCacheTarget(redis.ConfigurationString(2));
        // The seed's SQL store and SessionGrains on PostgreSQL, each in a database of its own on the one server.
        await using var seedSql = await SeedSqlStore.StartAsync(await postgres.CreateDatabaseAsync());
        var onPostgres = ClusterStore.Postgres(await postgres.CreateDatabaseAsync());
        await PostgresSchema.MigrateAsync(onPostgres.ConnectionString);
        log.WriteLine("Starting the silo processes and the co-hosted silo...");
        // The two silo processes start side by side: each takes seconds. (Should the Redis one fail, the process-exit
        // handler still stops the other.)
        var startingExternalPostgres = SessionGrainsTarget.StartExternalAsync(onPostgres, nearCache: false);
        // Today's path (no near cache) and a frontend with it, both clients of the same silo process.
        var onRedis = ClusterStore.Redis(redis.ConfigurationString(0));
        await using var external = await SessionGrainsTarget.StartExternalAsync(onRedis, nearCache: false);
        await using var externalCached = await external.StartFrontendAsync(SessionGrainsTarget.ExternalName(onRedis, silos: 1, nearCache: true), nearCache: true);
        await using var coHostedCached = options.CoHostedCache != CacheRows.Off ? await SessionGrainsTarget.StartCoHostedAsync(redis.ConfigurationString(0), nearCache: true) : null;
        await using var coHosted = options.CoHostedCache != CacheRows.On ? await SessionGrainsTarget.StartCoHostedAsync(redis.ConfigurationString(0), nearCache: false) : null;
        // The same with session events off, on the workloads that would show what events cost: creates write them, validations must not.
        await using var coHostedNoEvents = coHosted is null ? null : await SessionGrainsTarget.StartCoHostedAsync(redis.ConfigurationString(0), nearCache: false, events: false);
        await using var scaledOut = options.Silos > 1 ? await SessionGrainsTarget.StartExternalAsync(onRedis, options.Silos) : null;
        await using var externalPostgres = await startingExternalPostgres;
        await using var externalPostgresCached = await externalPostgres.StartFrontendAsync(SessionGrainsTarget.ExternalName(onPostgres, silos: 1, nearCache: true), nearCache: true);
        // Three frontends of the same silo, behind round robin: the external clients above and two more each.
        var frontendRows = options.Runs(Workload.Realistic) || options.Runs(Workload.Revoke) || options.Runs(Workload.RevokeFrozen);
        await using var frontendsCached = frontendRows ? await FrontendsTarget.StartAsync(externalCached, nearCache: true) : null;
        await using var frontends = frontendRows ? await FrontendsTarget.StartAsync(external, nearCache: false) : null;
        ISessionTarget?[] maybeStores = [seed, redisCache, externalCached, external, scaledOut, coHostedCached, coHosted, coHostedNoEvents, frontendsCached, frontends, seedSql, externalPostgresCached, externalPostgres];
        var stores = maybeStores.OfType<ISessionTarget>().ToArray();
        var floor = new GrainCallFloorTarget(external);
        // The PostgreSQL rows last in each workload, after the floor.
        ISessionTarget[] targets = [seed, seedSliding, .. stores.Skip(1).Where(t => t.Server == StoreServer.Redis), floor, .. stores.Where(t => t.Server == StoreServer.PostgreSQL)];
        Func<Task<double>> CpuSeconds(ISessionTarget target) => target.Server == StoreServer.PostgreSQL ? postgres.CpuSecondsAsync : redis.CpuSecondsAsync;

        var results = new List<Measurement>();

        // Each workload runs in rounds; a round measures every target once, the order rotating from round to
        // round, so a slow spell of this shared machine (or a neighbour's GC) falls on every target alike.
        // A target's row is its median round, with the range of all its rounds.
        async Task Measure(Workload workload, Func<ISessionTarget, Func<int, Random, Task<TimeSpan>>> operationFor, int? concurrency = null)
        {
            var measuring = targets.Where(t => t.Supports(workload)).ToList();
            if (!options.Runs(workload) || measuring.Count == 0)
            {
                return;
            }

            // Round 0 is a warm-up, not recorded: the first seconds of a code path pay for JIT compilation.
            var rounds = new List<Measurement>();
            for (var round = 0; round <= options.Rounds; round++)
            {
                var first = round % measuring.Count;
                foreach (var target in measuring.Skip(first).Concat(measuring.Take(first)))
                {
                    var measurement = await LoadRunner.MeasureAsync(target.Name, workload, concurrency ?? options.Concurrency, options.Duration, operationFor(target), target.Server, CpuSeconds(target),
                        nearCache: workload.Validates ? target.ReadNearCache : null);
                    if (round > 0)
                    {
                        rounds.Add(measurement);
                    }

                    log.WriteLine($"  {workload.Name,-36} {target.Name,-36} {measurement.OpsPerSecond,10:N0} ops/s  p99 {measurement.P99Ms,8:0.000} ms  ({(round == 0 ? "warm-up" : $"round {round}")})");
                }
            }

            results.AddRange(measuring.Select(target => LoadRunner.Median(rounds.Where(r => r.Target == target.Name).ToList())));
        }

        // At an offered rate, each target's rounds run back to back after a long warm-up instead of interleaved:
        // between interleaved rounds the near caches' leases would run out, and every round would measure a cold start.
        async Task MeasureAtRate(Workload workload, Func<ISessionTarget, (int Callers, double Rate, Func<int, Random, Task<TimeSpan>> Operation)> scheduleFor)
        {
            if (!options.Runs(workload))
            {
                return;
            }

            foreach (var target in targets.Where(t => t.Supports(workload)))
            {
                var (callers, rate, operation) = scheduleFor(target);
                var rounds = new List<Measurement>();
                for (var round = 0; round <= options.Rounds; round++)
                {
                    var measurement = await LoadRunner.MeasureAsync(target.Name, workload, callers, round == 0 ? options.RealisticWarmUp : options.Duration, operation, target.Server, CpuSeconds(target),
                        warmUp: TimeSpan.Zero, offeredRate: rate, nearCache: target.ReadNearCache);
                    if (round > 0)
                    {
                        rounds.Add(measurement);
                    }

                    log.WriteLine($"  {workload.Name,-36} {target.Name,-36} {measurement.OpsPerSecond,10:N0} ops/s  p99 {measurement.P99Ms,8:0.000} ms  hits {measurement.HitRatio:0.0%}  ({(round == 0 ? "warm-up" : $"round {round}")})");
                }

                results.Add(LoadRunner.Median(rounds));
            }
        }

        // The validate, mix and realistic workloads share one population of sessions per store.
        log.WriteLine($"Creating {options.Sessions:N0} sessions in each store...");
        var populations = new Dictionary<ISessionTarget, string[]>();
        foreach (var target in stores)
        {
            var populated = Workload.All.Any(w => w.NeedsPopulation && options.Runs(w) && target.Supports(w));
            populations[target] = populated ? await CreatePopulationAsync(target, options.Sessions) : [];
        }

        populations[seedSliding] = populations[seed];
        populations[floor] = populations[external];

        // The validate workloads measure sessions in use. Every session is validated once first, unmeasured, in
        // every store alike: SessionGrains activates a session on its first use, not when it is created.
        log.WriteLine("Using each session once...");
        foreach (var target in stores)
        {
            foreach (var chunk in populations[target].Chunk(500))
            {
                await Task.WhenAll(chunk.Select(target.ValidateAsync));
            }
        }

        var zipf = new ZipfSampler(options.Sessions);
        var updates = 0;
        await Measure(Workload.ValidateUniform, target =>
        {
            var handles = populations[target];
            return async (_, random) =>
            {
                await target.ValidateAsync(handles[random.Next(handles.Length)]);
                return TimeSpan.Zero;
            };
        });
        await Measure(Workload.ValidateZipf, target =>
        {
            var handles = populations[target];
            return async (_, random) =>
            {
                await target.ValidateAsync(handles[zipf.Next(random)]);
                return TimeSpan.Zero;
            };
        });
        await Measure(Workload.Mix, target =>
        {
            var handles = populations[target];
            return async (_, random) =>
            {
                var handle = handles[random.Next(handles.Length)];
                await (random.Next(10) == 0 ? target.UpdateAsync(handle, Interlocked.Increment(ref updates)) : target.ValidateAsync(handle));
                return TimeSpan.Zero;
            };
        });

        // Before create and count: count empties and refills the seed's database, populations included.
        // Every user's session validated about once a second, each request to the next of 3 frontends (round
        // robin): caller c validates sessions c, c + callers, ... once per pass, in a new order each pass.
        await MeasureAtRate(Workload.Realistic, target =>
        {
            var handles = populations[target];
            var callers = Math.Min(options.Concurrency, handles.Length);
            var orders = Enumerable.Range(0, callers).Select(c => Enumerable.Range(0, handles.Length).Where(i => i % callers == c).ToArray()).ToArray();
            var positions = new int[callers];
            return (callers, handles.Length, async (caller, random) =>
            {
                var order = orders[caller];
                if (positions[caller] == 0)
                {
                    random.Shuffle(order);
                }

                var handle = handles[order[positions[caller]]];
                positions[caller] = (positions[caller] + 1) % order.Length;
                return await target.ValidateAsync(handle) ? TimeSpan.Zero : throw new InvalidOperationException("a live session was refused");
            });
        });

        // A session every frontend holds (has validated), revoked through one of them; then none may accept it.
        var revokes = 0;
        await Measure(Workload.Revoke, target =>
        {
            var holders = ((FrontendsTarget)target).Frontends;
            return async (caller, _) =>
            {
                var n = Interlocked.Increment(ref revokes);
                var unmeasured = Stopwatch.StartNew();
                var created = await holders[n % holders.Count].Store.CreateAsync($"revoke-{caller}");
                var token = created.Token.Value;
                if (await CountValidAsync(holders, [token]) != holders.Count)
                {
                    throw new InvalidOperationException("a frontend refused a new session");
                }

                unmeasured.Stop();
                if (!await holders[(n + 1) % holders.Count].Store.RevokeAsync(created.Session.UserId, created.Session.SessionId))
                {
                    throw new InvalidOperationException("the revoke found no session");
                }

                unmeasured.Start();
                return await CountValidAsync(holders, [token]) == 0 ? unmeasured.Elapsed : throw new InvalidOperationException("a frontend accepted a revoked session");
            };
        }, concurrency: BenchmarkOptions.RevokeCallers);

        if (options.Runs(Workload.RevokeFrozen))
        {
            foreach (var target in targets.OfType<FrontendsTarget>())
            {
                var measurement = await MeasureFrozenFrontendAsync(target, options.FrozenSessions);
                log.WriteLine($"  {Workload.RevokeFrozen.Name,-36} {target.Name,-36} p50 {measurement.P50Ms,8:0.000} ms  p99.9 {measurement.P999Ms,8:0.000} ms  errors {measurement.Errors}");
                results.Add(measurement);
            }
        }

        // Logins spread over many users (as they do): 5,000 users at a time, each of them up to 10 sessions
        // (devices), then the next 5,000, however long or often the workload runs. Each target counts its own
        // creates, so every target sees the same sequence of users.
        var creates = targets.ToDictionary(t => t, _ => new StrongBox<int>());
        await Measure(Workload.Create, target => async (_, _) =>
        {
            var n = Interlocked.Increment(ref creates[target].Value);
            await target.CreateAsync($"create-{n % 5000}-{n / 50_000}");
            return TimeSpan.Zero;
        });

        var listedUsers = new Dictionary<ISessionTarget, string>();
        foreach (var target in options.Runs(Workload.ListByUser) ? targets.Where(t => t.Supports(Workload.ListByUser)) : [])
        {
            listedUsers[target] = "list-" + Guid.NewGuid().ToString("N")[..8];
            for (var i = 0; i < 50; i++)
            {
                await target.CreateAsync(listedUsers[target]);
            }
        }

        await Measure(Workload.ListByUser, target =>
        {
            var user = listedUsers[target];
            return async (_, _) => await target.ListByUserAsync(user) == 50 ? TimeSpan.Zero : throw new InvalidOperationException("the list lost sessions");
        });

        await Measure(Workload.DeleteAllForUser, target => async (caller, _) =>
        {
            // Setting up the user's 50 sessions is not part of the measured time.
            var setup = Stopwatch.StartNew();
            var user = $"delete-{caller}-{Guid.NewGuid():N}";
            await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => target.CreateAsync(user)));
            setup.Stop();
            if (await target.DeleteAllForUserAsync(user) != 50)
            {
                throw new InvalidOperationException("delete-all missed sessions");
            }

            return setup.Elapsed;
        }, concurrency: options.Smoke ? 2 : null); // smoke: an operation's setup outlasts a round, and the last ones run on after it

        // Count is a monitoring call: one caller. The seeds' databases (their own: Redis number 1, the SQL store's)
        // are emptied and refilled to exactly the stated size; SessionGrains' counts are shard sums whatever is stored.
        if (options.Runs(Workload.Count))
        {
            log.WriteLine($"Storing {options.CountSessions:N0} sessions for the count workload...");
            await redis.Connection.GetServers()[0].FlushDatabaseAsync(1);
            await seed.StoreManyAsync(options.CountSessions);
            await seedSql.ClearAsync();
            await seedSql.StoreManyAsync(options.CountSessions);
            await (coHosted ?? coHostedCached)!.StoreManyAsync(options.CountSessions);
        }

        await Measure(Workload.Count, target => async (_, _) =>
        {
            await target.CountAsync();
            return TimeSpan.Zero;
        }, concurrency: 1);

        log.WriteLine($"Done in {total.Elapsed.TotalMinutes:0.0} min.");
        return BenchmarkReport.WithRatios(results, seed.Name, seedSql.Name);
    }

    /// <summary>
    /// Three frontends hold <paramref name="count"/> sessions, one of them in a process of its own; that one is
    /// frozen (SIGSTOP) and every session is revoked at once through another. A revoke must wait for the frozen
    /// frontend's lease to run out, no longer; afterwards neither frontend still running may accept any of them.
    /// </summary>
    private static async Task<Measurement> MeasureFrozenFrontendAsync(FrontendsTarget target, int count)
    {
        await using var frozen = await FrontendProcess.StartAsync(target.External.FrontendEnvironment(target.NearCache));
        SessionGrainsTarget[] running = [target.Frontends[0], target.Frontends[1]];
        var run = Guid.NewGuid().ToString("N")[..8];
        var sessions = new List<CreatedSession>(count);
        foreach (var chunk in Enumerable.Range(0, count).Chunk(200))
        {
            // One user per session: one user's revokes would pass its index grain one at a time.
            sessions.AddRange(await Task.WhenAll(chunk.Select(i => running[0].Store.CreateAsync($"frozen-{run}-{i}"))));
        }

        var tokens = sessions.Select(s => s.Token.Value).ToArray();
        if (await CountValidAsync(running, tokens) != running.Length * count || await frozen.ValidateAsync(tokens) != count)
        {
            throw new InvalidOperationException("a frontend refused a new session");
        }

        await frozen.FreezeAsync();
        var allocated = GC.GetTotalAllocatedBytes();
        var clock = Stopwatch.StartNew();
        var outcomes = await Task.WhenAll(sessions.Select(async session =>
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                return await running[0].Store.RevokeAsync(session.Session.UserId, session.Session.SessionId) ? Stopwatch.GetElapsedTime(started).TotalMilliseconds : (double?)null;
            }
            catch (Exception exception) when (exception is not OutOfMemoryException)
            {
                return null;
            }
        }));
        var wallTime = clock.Elapsed;
        allocated = GC.GetTotalAllocatedBytes() - allocated;
        var accepted = await CountValidAsync(running, tokens);
        return LoadRunner.FromBurst(target.Name, Workload.RevokeFrozen, outcomes.OfType<double>().ToList(), outcomes.Count(o => o is null) + accepted, wallTime, allocated);
    }

    /// <summary>How many (frontend, token) pairs validate: each token through each frontend.</summary>
    private static async Task<int> CountValidAsync(IEnumerable<SessionGrainsTarget> frontends, IReadOnlyList<string> tokens)
    {
        var valid = 0;
        foreach (var frontend in frontends)
        {
            foreach (var chunk in tokens.Chunk(200))
            {
                valid += (await Task.WhenAll(chunk.Select(frontend.ValidateAsync))).Count(v => v);
            }
        }

        return valid;
    }

    private static async Task<string[]> CreatePopulationAsync(ISessionTarget target, int count)
    {
        var handles = new string[count];
        for (var start = 0; start < count; start += 500)
        {
            var batch = await Task.WhenAll(Enumerable.Range(start, Math.Min(500, count - start)).Select(i => CreateForSetupAsync(target, $"user-{i / 20}")));
            batch.CopyTo(handles, start);
        }

        return handles;
    }

    /// <summary>
    /// A create for setting up a workload (not measured). A 503 in these bursts (five processes on two cores)
    /// is answered as a client should: wait as told, then once more.
    /// </summary>
    private static async Task<string> CreateForSetupAsync(ISessionTarget target, string user)
    {
        try
        {
            return await target.CreateAsync(user);
        }
        catch (SessionStoreUnavailableException exception)
        {
            await Task.Delay(exception.RetryAfter);
            return await target.CreateAsync(user);
        }
    }
}
