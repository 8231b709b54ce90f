using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>
/// A bounded create / validate / update load against a <see cref="LocalCluster"/>, through the Orleans
/// client and through the HTTP API of several silos, that remembers what the cluster acknowledged: every
/// created session and the last update it confirmed. Each worker owns its sessions, so the last confirmed
/// update of a session is also the last one sent that could have been applied.
/// </summary>
public sealed class SessionLoad(LocalCluster cluster, int workers)
{
    private readonly ConcurrentBag<Tracked> _sessions = [];
    private readonly ConcurrentQueue<(TimeSpan At, string Error)> _failures = new();
    private readonly Stopwatch _clock = new();
    private long _operations;
    private readonly ConcurrentQueue<(TimeSpan At, TimeSpan Took)> _slowest = new();

    /// <summary>HTTP requests go to these silos (a load balancer's healthy pool); the client uses every gateway.</summary>
    public List<int> HttpSilos { get; } = [0];

    public long Operations => Interlocked.Read(ref _operations);

    public IReadOnlyCollection<(TimeSpan At, string Error)> Failures => _failures;

    public TimeSpan Elapsed => _clock.Elapsed;

    public int AcknowledgedSessions => _sessions.Count;

    /// <summary>The longest any request took that started at or after <paramref name="since"/> (including client retries).</summary>
    public TimeSpan LongestRequestSince(TimeSpan since) =>
        _slowest.Where(r => r.At >= since).Select(r => r.Took).DefaultIfEmpty(TimeSpan.Zero).Max();

    /// <summary>Runs until <paramref name="duration"/> has passed or the token is cancelled (which ends it quietly).</summary>
    public async Task RunAsync(TimeSpan duration, CancellationToken cancellationToken)
    {
        _clock.Start();
        try
        {
            await Task.WhenAll(Enumerable.Range(0, workers).Select(w => Task.Run(() => WorkerAsync(w, duration, cancellationToken), CancellationToken.None)));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped by the test.
        }
    }

    /// <summary>
    /// Checks every session and update acknowledged before <paramref name="acknowledgedBefore"/> (all, by
    /// default) against the cluster; returns the ones lost or behind their last confirmed update.
    /// </summary>
    public async Task<IReadOnlyList<string>> FindLostAsync(CancellationToken cancellationToken, TimeSpan? acknowledgedBefore = null)
    {
        var cutoff = acknowledgedBefore ?? TimeSpan.MaxValue;
        var checkedSessions = _sessions.Where(s => s.CreatedAt < cutoff).ToList();
        var lost = new ConcurrentBag<string>();
        await Parallel.ForEachAsync(checkedSessions, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (session, ct) =>
        {
            var confirmed = session.ConfirmedBefore(cutoff);
            var current = await cluster.Store.ValidateAsync(session.Token, cancellationToken: ct);
            if (current is null)
            {
                lost.Add($"{SessionIds.ForLog(session.SessionId)}: gone");
            }
            else if (confirmed > 0 && (!current.Metadata.TryGetValue("n", out var n) || long.Parse(n, CultureInfo.InvariantCulture) < confirmed))
            {
                lost.Add($"{SessionIds.ForLog(session.SessionId)}: n={current.Metadata.GetValueOrDefault("n")} but {confirmed} was confirmed");
            }
        });

        foreach (var user in checkedSessions.GroupBy(s => s.UserId))
        {
            var listed = (await cluster.Store.ListByUserAsync(user.Key, 1000, cancellationToken: cancellationToken)).Sessions.Select(s => s.SessionId).ToHashSet();
            foreach (var missing in user.Where(s => !listed.Contains(s.SessionId)))
            {
                lost.Add($"{SessionIds.ForLog(missing.SessionId)}: not in its user's list");
            }
        }

        return [.. lost];
    }

    private async Task WorkerAsync(int worker, TimeSpan duration, CancellationToken cancellationToken)
    {
        var random = new Random(worker);
        var mine = new List<Tracked>();
        var created = 0;
        while (_clock.Elapsed < duration && !cancellationToken.IsCancellationRequested)
        {
            var roll = random.Next(100);
            var viaHttp = random.Next(2) == 0;
            Interlocked.Increment(ref _operations);
            var startedAt = _clock.Elapsed;
            try
            {
                if (mine.Count < 5 || roll < 15)
                {
                    // A user per 40 sessions keeps every user below the per-user limit (no evictions).
                    var user = $"load-{worker}-{created++ / 40}";
                    var session = viaHttp ? await CreateOverHttpAsync(user, random, cancellationToken) : await CreateOverClientAsync(user, cancellationToken);
                    mine.Add(session);
                    _sessions.Add(session);
                }
                else if (roll < 70)
                {
                    var session = mine[random.Next(mine.Count)];
                    var found = viaHttp
                        ? (await Http(random).SendAsync(Request(HttpMethod.Get, "/sessions/current", session.Token), cancellationToken)).EnsureSuccessStatusCode() is not null
                        : await cluster.Store.ValidateAsync(session.Token, cancellationToken: cancellationToken) is not null;
                    if (!found)
                    {
                        throw new InvalidOperationException("an acknowledged session was not found");
                    }
                }
                else
                {
                    var session = mine[random.Next(mine.Count)];
                    var n = ++session.Sent;
                    var change = ImmutableDictionary<string, string?>.Empty.Add("n", n.ToString(CultureInfo.InvariantCulture));
                    if (viaHttp)
                    {
                        var request = Request(HttpMethod.Patch, "/sessions/current", session.Token);
                        request.Content = JsonContent.Create(new { metadata = change });
                        (await Http(random).SendAsync(request, cancellationToken)).EnsureSuccessStatusCode();
                    }
                    else if (await cluster.Store.UpdateAsync(session.Token, new SessionUpdate { Metadata = change }, cancellationToken: cancellationToken) is null)
                    {
                        throw new InvalidOperationException("an acknowledged session was not found for update");
                    }

                    session.Confirm(n, _clock.Elapsed);
                }

                var took = _clock.Elapsed - startedAt;
                if (took > TimeSpan.FromMilliseconds(200))
                {
                    _slowest.Enqueue((startedAt, took));
                }
            }
            catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                _failures.Enqueue((_clock.Elapsed, exception.GetType().Name + ": " + exception.Message.Split('\n')[0]));
                _slowest.Enqueue((startedAt, _clock.Elapsed - startedAt));
                await Task.Delay(20, cancellationToken);
            }
        }
    }

    private async Task<Tracked> CreateOverClientAsync(string user, CancellationToken cancellationToken)
    {
        var created = await cluster.Store.CreateAsync(user, cancellationToken: cancellationToken);
        return new Tracked(created.Token.Value, created.Session.SessionId, user, _clock.Elapsed);
    }

    private async Task<Tracked> CreateOverHttpAsync(string user, Random random, CancellationToken cancellationToken)
    {
        using var response = (await Http(random).PostAsJsonAsync("/sessions", new { userId = user }, cancellationToken)).EnsureSuccessStatusCode();
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken)).RootElement;
        return new Tracked(body.GetProperty("token").GetString()!, body.GetProperty("sessionId").GetString()!, user, _clock.Elapsed);
    }

    private HttpClient Http(Random random)
    {
        lock (HttpSilos)
        {
            return cluster.Silos[HttpSilos[random.Next(HttpSilos.Count)]].Http;
        }
    }

    private static HttpRequestMessage Request(HttpMethod method, string path, string token)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Add("X-Session-Token", token);
        return request;
    }

    private sealed class Tracked(string token, string sessionId, string userId, TimeSpan createdAt)
    {
        private readonly List<(long N, TimeSpan At)> _confirmed = [];

        public string Token { get; } = token;

        public string SessionId { get; } = sessionId;

        public string UserId { get; } = userId;

        /// <summary>When the create was acknowledged (load clock).</summary>
        public TimeSpan CreatedAt { get; } = createdAt;

        /// <summary>Updates sent (the value of the last one).</summary>
        public long Sent { get; set; }

        public void Confirm(long n, TimeSpan at) => _confirmed.Add((n, at));

        /// <summary>The last update the cluster confirmed before <paramref name="cutoff"/>, or 0.</summary>
        public long ConfirmedBefore(TimeSpan cutoff) => _confirmed.Where(c => c.At < cutoff).Select(c => c.N).DefaultIfEmpty(0).Max();
    }
}
