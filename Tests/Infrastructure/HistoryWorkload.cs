using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using SessionGrains.HistoryFrontend;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>
/// Concurrent validations through several frontends and writes from a writer, against sessions of a few dozen
/// users, every call recorded in a <see cref="HistoryLog"/> for <see cref="HistoryChecker"/>. Tokens stay in this
/// object's memory (by key); the log names keys only. The sessions just written are validated most, on every
/// route, before and after the write, so that a frontend that kept a session answers for it when it matters.
/// </summary>
public sealed class HistoryWorkload
{
    private readonly StoreRoute _writer;
    private readonly IReadOnlyList<StoreRoute> _frontends;
    private readonly string[] _users;
    private readonly int _limit;
    private readonly ConcurrentDictionary<int, string> _tokens = new();
    private readonly Lock _gate = new();
    private readonly Dictionary<string, List<(HistoryKey Key, DateTimeOffset CreatedAt)>> _believedLive = [];
    private readonly Dictionary<int, long> _versions = [];
    private readonly int[] _hot = new int[16];
    private int _hotNext;
    private long _updates;

    /// <param name="writer">The writer's own client.</param>
    /// <param name="frontends">The frontends validations go through (writes too, some of the time).</param>
    /// <param name="limit">The silos' per-user session limit (evict oldest).</param>
    public HistoryWorkload(StoreRoute writer, IReadOnlyList<StoreRoute> frontends, int users, int limit, int maxOperations)
    {
        _writer = writer;
        _frontends = frontends;
        _limit = limit;
        MaxOperations = maxOperations;
        var run = Guid.NewGuid().ToString("N")[..6];
        _users = [.. Enumerable.Range(0, users).Select(i => $"history-{run}-{i:D3}")];
        foreach (var user in _users)
        {
            _believedLive[user] = [];
        }

        Array.Fill(_hot, -1);
    }

    public HistoryLog Log { get; } = new();

    /// <summary>The run stops adding calls past this many (a long run's memory bound).</summary>
    public int MaxOperations { get; }

    /// <summary>Creates <paramref name="sessionsPerUser"/> sessions per user (more than the limit, so the oldest are evicted).</summary>
    public Task SetupAsync(int sessionsPerUser, CancellationToken ct) =>
        Parallel.ForEachAsync(_users, new ParallelOptions { MaxDegreeOfParallelism = 20, CancellationToken = ct }, async (user, token) =>
        {
            for (var i = 0; i < sessionsPerUser; i++)
            {
                await CreateAsync(_writer, user, token);
            }
        });

    /// <summary>Validators on every route and writers (each owning a share of the users) until <paramref name="ct"/> is cancelled.</summary>
    public async Task RunAsync(int validatorsPerFrontend, int writers, CancellationToken ct)
    {
        var tasks = new List<Task>();
        foreach (var route in _frontends)
        {
            tasks.AddRange(Enumerable.Range(0, validatorsPerFrontend).Select(_ => Task.Run(() => ValidateLoopAsync(route, ct), CancellationToken.None)));
        }

        tasks.Add(Task.Run(() => ValidateLoopAsync(_writer, ct), CancellationToken.None));
        tasks.AddRange(Enumerable.Range(0, writers).Select(w => Task.Run(() => WriteLoopAsync(w, writers, ct), CancellationToken.None)));
        tasks.Add(Task.Run(() => ListLoopAsync(ct), CancellationToken.None));
        await Task.WhenAll(tasks);
    }

    /// <summary>
    /// After the run, with no call of the test in flight: every user's list and count, then every key validated on
    /// every route (a key whose every attempt failed is tried again, a few times).
    /// </summary>
    public async Task CheckAfterRunAsync(CancellationToken ct)
    {
        var routes = _frontends.Append(_writer).ToList();
        await Parallel.ForEachAsync(_users, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct }, async (user, token) =>
        {
            await ListAsync(_writer, user, quiescent: true, token);
            await RecordAsync(_writer, new HistoryOp { Kind = HistoryOpKind.Count, UserId = user, Quiescent = true },
                () => _writer.CountAsync(user, token), (op, answer) => op with { Count = answer.Count });
        });

        var keys = Log.Keys;
        await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = ct }, async (key, token) =>
        {
            for (var attempt = 0; attempt < 4; attempt++)
            {
                var answered = 0;
                foreach (var route in routes)
                {
                    answered += await ValidateAsync(route, key.Id, quiescent: true, token) ? 1 : 0;
                }

                if (answered > 0)
                {
                    return;
                }

                await Task.Delay(TimeSpan.FromSeconds(1), token);
            }
        });
    }

    private async Task ValidateLoopAsync(StoreRoute route, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested && Log.Count < MaxOperations)
        {
            var key = PickKeyToValidate();
            if (key < 0 || !_tokens.ContainsKey(key))
            {
                await Task.Delay(10, CancellationToken.None);
                continue;
            }

            await ValidateAsync(route, key, quiescent: false, ct);
        }
    }

    private int PickKeyToValidate()
    {
        var keys = _tokens.Count;
        if (keys == 0)
        {
            return -1;
        }

        if (Random.Shared.NextDouble() < 0.6)
        {
            var hot = _hot[Random.Shared.Next(_hot.Length)];
            if (hot >= 0)
            {
                return hot;
            }
        }

        return Random.Shared.Next(keys);
    }

    private async Task WriteLoopAsync(int writer, int writers, CancellationToken ct)
    {
        var users = _users.Where((_, i) => i % writers == writer).ToArray();
        while (!ct.IsCancellationRequested && Log.Count < MaxOperations)
        {
            var user = users[Random.Shared.Next(users.Length)];
            var route = Random.Shared.NextDouble() < 0.3 ? _frontends[Random.Shared.Next(_frontends.Count)] : _writer;
            List<(HistoryKey Key, DateTimeOffset CreatedAt)> live;
            lock (_gate)
            {
                live = [.. _believedLive[user]];
            }

            var roll = Random.Shared.NextDouble();
            if (live.Count == 0 || roll < 0.2)
            {
                await CreateAsync(route, user, ct);
                continue;
            }

            var target = live[Random.Shared.Next(live.Count)].Key;
            await WarmAsync([target.Id]);
            if (roll < 0.6)
            {
                await UpdateAsync(route, target, ct);
            }
            else if (roll < 0.72)
            {
                await RotateAsync(route, target, ct);
            }
            else if (roll < 0.84)
            {
                await EndAsync(route, target, HistoryOpKind.Revoke, ct);
            }
            else if (roll < 0.92)
            {
                await EndAsync(route, target, HistoryOpKind.Delete, ct);
            }
            else
            {
                await WarmAsync([.. live.Select(s => s.Key.Id)]);
                await DeleteAllAsync(route, user, Random.Shared.NextDouble() < 0.5 ? target : null, ct);
            }
        }
    }

    private async Task ListLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested && Log.Count < MaxOperations)
        {
            var route = Random.Shared.NextDouble() < 0.5 ? _writer : _frontends[Random.Shared.Next(_frontends.Count)];
            await ListAsync(route, _users[Random.Shared.Next(_users.Length)], quiescent: false, ct);
            await Task.Delay(20, CancellationToken.None);
        }
    }

    /// <summary>Puts the keys about to be written among those validated most, and gives every route time to validate them first.</summary>
    private async Task WarmAsync(IReadOnlyList<int> keys)
    {
        foreach (var key in keys)
        {
            MakeHot(key);
        }

        await Task.Delay(20, CancellationToken.None);
    }

    private void MakeHot(int key) => _hot[(int)((uint)Interlocked.Increment(ref _hotNext) % _hot.Length)] = key;

    private async Task<bool> ValidateAsync(StoreRoute route, int key, bool quiescent, CancellationToken ct)
    {
        var answer = await RecordAsync(route, new HistoryOp { Kind = HistoryOpKind.Validate, Key = key, Quiescent = quiescent },
            () => route.ValidateAsync(_tokens[key], ct), (op, answer) => op with { Found = answer.Found, Version = answer.Version });
        return answer is not null;
    }

    private async Task CreateAsync(StoreRoute route, string user, CancellationToken ct)
    {
        HistoryKey? created = null;
        var answer = await RecordAsync(route, new HistoryOp { Kind = HistoryOpKind.Create, UserId = user }, () => route.CreateAsync(user, ct), (op, answer) =>
        {
            created = Learn(user, answer, rotatedFrom: null);
            return op with { Found = true, NewKey = created.Id, Version = answer.Version, CreatedAt = answer.CreatedAt };
        });
        if (answer is not null && created is not null)
        {
            lock (_gate)
            {
                var live = _believedLive[user];
                live.Add((created, answer.CreatedAt));
                while (live.Count > _limit)
                {
                    live.Remove(live.MinBy(s => s.CreatedAt));
                }

                _versions[created.Id] = answer.Version;
            }

            MakeHot(created.Id);
        }
    }

    private async Task UpdateAsync(StoreRoute route, HistoryKey key, CancellationToken ct)
    {
        long? expected;
        lock (_gate)
        {
            expected = _versions.TryGetValue(key.Id, out var version) ? version : null;
        }

        var value = Interlocked.Increment(ref _updates).ToString(CultureInfo.InvariantCulture);
        var answer = await RecordAsync(route, new HistoryOp { Kind = HistoryOpKind.Update, Key = key.Id, ExpectedVersion = expected },
            () => route.UpdateAsync(_tokens[key.Id], expected, value, ct),
            (op, answer) => op with { Found = answer.Found, Version = answer.Version, Conflict = answer.Conflict });
        if (answer is not null)
        {
            lock (_gate)
            {
                if (answer.Found)
                {
                    _versions[key.Id] = answer.Version;
                }
                else
                {
                    Forget(key);
                }
            }
        }
    }

    private async Task RotateAsync(StoreRoute route, HistoryKey key, CancellationToken ct)
    {
        HistoryKey? next = null;
        var answer = await RecordAsync(route, new HistoryOp { Kind = HistoryOpKind.Rotate, Key = key.Id }, () => route.RotateAsync(_tokens[key.Id], ct), (op, answer) =>
        {
            if (!answer.Found)
            {
                return op with { Found = false };
            }

            next = Learn(key.UserId, answer, rotatedFrom: key);
            return op with { Found = true, NewKey = next.Id, Version = answer.Version, CreatedAt = answer.CreatedAt };
        });
        if (answer is not null)
        {
            lock (_gate)
            {
                Forget(key);
                if (next is not null)
                {
                    _believedLive[key.UserId].Add((next, answer.CreatedAt));
                    _versions[next.Id] = answer.Version;
                }
            }

            if (next is not null)
            {
                MakeHot(next.Id);
            }
        }
    }

    private async Task EndAsync(StoreRoute route, HistoryKey key, HistoryOpKind kind, CancellationToken ct)
    {
        var answer = await RecordAsync(route, new HistoryOp { Kind = kind, Key = key.Id, UserId = key.UserId },
            () => kind == HistoryOpKind.Revoke ? route.RevokeAsync(key.UserId, key.SessionId, ct) : route.DeleteAsync(_tokens[key.Id], ct),
            (op, answer) => op with { Found = answer.Ended });
        if (answer is not null)
        {
            lock (_gate)
            {
                Forget(key);
            }
        }
    }

    private async Task DeleteAllAsync(StoreRoute route, string user, HistoryKey? except, CancellationToken ct)
    {
        var answer = await RecordAsync(route, new HistoryOp { Kind = HistoryOpKind.DeleteAll, UserId = user, ExceptSessionId = except?.SessionId },
            () => route.DeleteAllAsync(user, except?.SessionId, ct), (op, answer) => op with { Count = answer.Count });
        if (answer is not null)
        {
            lock (_gate)
            {
                _believedLive[user].RemoveAll(s => s.Key != except);
            }
        }
    }

    private Task<ListAnswer?> ListAsync(StoreRoute route, string user, bool quiescent, CancellationToken ct) =>
        RecordAsync(route, new HistoryOp { Kind = HistoryOpKind.List, UserId = user, Quiescent = quiescent },
            () => route.ListAsync(user, ct), (op, answer) => op with { Listed = answer.SessionIds });

    /// <summary>Registers the key of a token a create or rotation returned; the token itself stays here.</summary>
    private HistoryKey Learn(string user, CreatedAnswer answer, HistoryKey? rotatedFrom)
    {
        var key = Log.AddKey(user, answer.SessionId!, rotatedFrom);
        _tokens[key.Id] = answer.Token!;
        return key;
    }

    private void Forget(HistoryKey key) => _believedLive[key.UserId].RemoveAll(s => s.Key == key);

    /// <summary>Times one call from just before it is sent to just after its answer arrives; a failure or timeout is indeterminate.</summary>
    private async Task<T?> RecordAsync<T>(StoreRoute route, HistoryOp call, Func<Task<T>> send, Func<HistoryOp, T, HistoryOp> answered)
        where T : class
    {
        var start = Stopwatch.GetTimestamp();
        try
        {
            var answer = await send();
            var end = Stopwatch.GetTimestamp();
            Log.Add(answered(call with { Process = route.Name, Start = start, End = end }, answer));
            return answer;
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            Log.Add(call with { Process = route.Name, Start = start, End = Stopwatch.GetTimestamp(), Outcome = HistoryOutcome.Indeterminate, Error = exception.GetType().Name });
            return null;
        }
    }
}
