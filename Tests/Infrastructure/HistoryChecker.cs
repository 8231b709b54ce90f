using System.Globalization;
using System.Text;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>How much of a history the rules could judge: a run that checked nothing proves nothing.</summary>
public sealed record class HistoryCoverage(
    int SuccessfulValidations,
    int AcknowledgedWrites,
    int CallsAfterEnd,
    int AnswersAfterUpdate,
    int InferredEvictions,
    int SessionsConfirmedAfterRun,
    int LimitChecks,
    int MostSessionsLiveAtOnce);

/// <summary>What <see cref="HistoryChecker"/> found: every anomaly, and what it could check.</summary>
public sealed record class HistoryReport(int Operations, int Indeterminate, IReadOnlyList<string> Anomalies, HistoryCoverage Coverage)
{
    public string Summary => $"operations checked: {Operations}, anomalies: {Anomalies.Count}";

    public override string ToString()
    {
        var text = new StringBuilder(Summary);
        text.Append(CultureInfo.InvariantCulture, $" (indeterminate: {Indeterminate}; {Coverage})");
        // Up to ten, taken in turn from each rule, so one rule's many do not hide another's.
        var shown = Anomalies.GroupBy(a => a[..Math.Min(3, a.Length)]).SelectMany(rule => rule.Select((anomaly, i) => (anomaly, i))).OrderBy(x => x.i).Take(10);
        foreach (var (anomaly, _) in shown)
        {
            text.AppendLine().Append("  ").Append(anomaly);
        }

        return text.ToString();
    }
}

/// <summary>
/// Checks a recorded history of store calls against the sequential model of sessions, in real-time order: a call
/// that started after another returned is ordered after it; calls that overlap may take effect in either order;
/// a failed or timed-out call may have taken effect at any time after it started, or never. The rules, each sound
/// under that reading (a legal history is never reported):
/// (a) nothing that starts after an end of its token returned (revoke, delete, delete-all covering it, rotation
/// with no grace, an eviction the limit implies) finds the session live; (b) nothing that starts after an update
/// returned version v sees a version below v; (c) a session nothing could have ended is never answered as gone,
/// and after the run its last token still reads at least its highest acknowledged version; (d) at no instant are
/// more of a user's sessions known live than the limit, and lists and counts agree with it.
/// Sessions are assumed to outlive the run (no expiry) and no signal policy revokes.
/// </summary>
public static class HistoryChecker
{
    public static HistoryReport Check(HistoryLog log, int perUserLimit) =>
        new Analysis(log.Operations, log.Keys, log.TicksPerSecond, perUserLimit).Run();

    private sealed class Analysis
    {
        private const long Never = long.MaxValue;

        private readonly IReadOnlyList<HistoryOp> _ops;
        private readonly IReadOnlyList<HistoryKey> _keys;
        private readonly long _ticksPerSecond;
        private readonly int _limit;
        private readonly long _origin;
        private readonly HistoryOp?[] _birth;
        private readonly List<HistoryOp>[] _onKey;
        private readonly Dictionary<string, List<HistoryOp>> _userOps = [];
        private readonly Dictionary<string, List<HistoryKey>> _userKeys = [];
        private readonly HistoryOp?[] _evictedBy;
        private readonly HashSet<int> _simulated = [];
        private readonly List<HistoryOp>[] _enders;
        private readonly long[] _firstEnderStart;
        private readonly long[] _deadline;
        private readonly HistoryOp?[] _deadlineBy;
        private readonly List<string> _anomalies = [];
        private int _callsAfterEnd;
        private int _answersAfterUpdate;
        private int _confirmed;
        private int _limitChecks;
        private int _mostLive;

        public Analysis(IReadOnlyList<HistoryOp> ops, IReadOnlyList<HistoryKey> keys, long ticksPerSecond, int limit)
        {
            _ops = ops;
            _keys = keys;
            _ticksPerSecond = ticksPerSecond;
            _limit = limit;
            _origin = ops.Count == 0 ? 0 : ops.Min(o => o.Start);
            _birth = new HistoryOp?[keys.Count];
            _onKey = [.. keys.Select(_ => new List<HistoryOp>())];
            _evictedBy = new HistoryOp?[keys.Count];
            _enders = new List<HistoryOp>[keys.Count];
            _firstEnderStart = new long[keys.Count];
            _deadline = new long[keys.Count];
            _deadlineBy = new HistoryOp?[keys.Count];
            foreach (var key in keys)
            {
                Add(_userKeys, key.UserId, key);
            }

            foreach (var op in ops)
            {
                if (op.Outcome == HistoryOutcome.Ok && op.NewKey >= 0)
                {
                    _birth[op.NewKey] = op;
                }

                if (op.Key >= 0)
                {
                    _onKey[op.Key].Add(op);
                }

                if (op.Kind is HistoryOpKind.Create or HistoryOpKind.DeleteAll && op.UserId is { } user)
                {
                    Add(_userOps, user, op);
                }
            }
        }

        public HistoryReport Run()
        {
            foreach (var user in _userKeys.Keys.Union(_userOps.Keys))
            {
                Simulate(user);
            }

            foreach (var key in _keys)
            {
                _enders[key.Id] = [.. Enders(key)];
                _firstEnderStart[key.Id] = _enders[key.Id].Select(e => e.Start).DefaultIfEmpty(Never).Min();
                (_deadline[key.Id], _deadlineBy[key.Id]) = Deadline(key);
            }

            CheckEnded();
            CheckVersions();
            CheckLost();
            CheckLimit();

            var coverage = new HistoryCoverage(
                SuccessfulValidations: _ops.Count(o => o.Kind == HistoryOpKind.Validate && o.Outcome == HistoryOutcome.Ok && o.Found),
                AcknowledgedWrites: _ops.Count(o => o.Outcome == HistoryOutcome.Ok && o.Kind is not (HistoryOpKind.Validate or HistoryOpKind.List or HistoryOpKind.Count)),
                CallsAfterEnd: _callsAfterEnd,
                AnswersAfterUpdate: _answersAfterUpdate,
                InferredEvictions: _evictedBy.Count(e => e is not null),
                SessionsConfirmedAfterRun: _confirmed,
                LimitChecks: _limitChecks,
                MostSessionsLiveAtOnce: _mostLive);
            return new HistoryReport(_ops.Count, _ops.Count(o => o.Outcome != HistoryOutcome.Ok), _anomalies, coverage);
        }

        /// <summary>
        /// Replays the user's creates, rotations and ends in the model while they are known exactly (each answered, none
        /// overlapping the next), to learn which session each create evicted (the oldest, as the user index does).
        /// </summary>
        private void Simulate(string user)
        {
            var membership = _userOps.GetValueOrDefault(user, [])
                .Concat(_userKeys.GetValueOrDefault(user, []).SelectMany(k => _onKey[k.Id]).Where(o => o.Kind is HistoryOpKind.Rotate or HistoryOpKind.Delete or HistoryOpKind.Revoke))
                .OrderBy(o => o.Start)
                .ToList();

            // The exact prefix ends before the first unanswered call, or before the first of two calls that overlap.
            var cut = membership.Count;
            for (var i = 0; i < membership.Count; i++)
            {
                if (membership[i].Outcome != HistoryOutcome.Ok)
                {
                    cut = i;
                    break;
                }

                if (i > 0 && membership[i - 1].End >= membership[i].Start)
                {
                    cut = membership.FindIndex(o => o.End >= membership[i].Start);
                    break;
                }
            }

            var live = new List<(int Key, DateTimeOffset CreatedAt)>();
            foreach (var op in membership.Take(cut))
            {
                if (!Apply(op, live))
                {
                    return; // the answers left the model (a finding of the other rules): infer nothing more
                }

                _simulated.Add(op.Index);
            }
        }

        private bool Apply(HistoryOp op, List<(int Key, DateTimeOffset CreatedAt)> live)
        {
            var index = live.FindIndex(s => s.Key == op.Key);
            switch (op.Kind)
            {
                case HistoryOpKind.Create when op.NewKey >= 0:
                    var evicted = new List<int>();
                    var remaining = live.ToList();
                    while (remaining.Count >= _limit)
                    {
                        var oldest = remaining.Min(s => s.CreatedAt);
                        var candidates = remaining.Where(s => s.CreatedAt == oldest).ToList();
                        if (candidates.Count > 1)
                        {
                            return false; // the index breaks the tie by a comparison this model does not repeat
                        }

                        evicted.Add(candidates[0].Key);
                        remaining.Remove(candidates[0]);
                    }

                    foreach (var key in evicted)
                    {
                        _evictedBy[key] = op;
                    }

                    live.Clear();
                    live.AddRange(remaining);
                    live.Add((op.NewKey, op.CreatedAt));
                    return true;
                case HistoryOpKind.Rotate when op.Found && index >= 0 && op.NewKey >= 0:
                    live.RemoveAt(index);
                    live.Add((op.NewKey, op.CreatedAt));
                    return true;
                case HistoryOpKind.Delete or HistoryOpKind.Revoke when op.Found && index >= 0:
                    live.RemoveAt(index);
                    return true;
                case HistoryOpKind.Rotate or HistoryOpKind.Delete or HistoryOpKind.Revoke when !op.Found && index < 0:
                    return true;
                case HistoryOpKind.DeleteAll:
                    var ended = live.RemoveAll(s => _keys[s.Key].SessionId != op.ExceptSessionId);
                    return ended == op.Count;
                default:
                    return false;
            }
        }

        /// <summary>Every call that could end the key's session: its own ends, the user's delete-alls, and creates that could evict it.</summary>
        private IEnumerable<HistoryOp> Enders(HistoryKey key)
        {
            if (_birth[key.Id] is not { } birth)
            {
                yield break;
            }

            foreach (var op in _onKey[key.Id].Where(o => o.Kind is HistoryOpKind.Delete or HistoryOpKind.Rotate or HistoryOpKind.Revoke))
            {
                yield return op;
            }

            foreach (var op in _userOps.GetValueOrDefault(key.UserId, []))
            {
                if (op == birth || (op.Outcome == HistoryOutcome.Ok && op.End < birth.Start))
                {
                    continue; // the session did not exist yet
                }

                if (op.Kind == HistoryOpKind.DeleteAll && op.ExceptSessionId != key.SessionId)
                {
                    yield return op;
                }
                else if (op.Kind == HistoryOpKind.Create && (!_simulated.Contains(op.Index) || _evictedBy[key.Id] == op))
                {
                    yield return op;
                }
            }
        }

        /// <summary>
        /// The earliest return of a call after which the session must be gone everywhere: one that ended it (true,
        /// a new token, the eviction the model implies), or one that covered it while no other ender could still be running.
        /// </summary>
        private (long Deadline, HistoryOp? By) Deadline(HistoryKey key)
        {
            var best = (Deadline: Never, By: (HistoryOp?)null);
            var enders = _enders[key.Id];
            foreach (var ender in enders.Where(e => e.Outcome == HistoryOutcome.Ok))
            {
                var endedIt = (ender.Key == key.Id && ender.Found) || _evictedBy[key.Id] == ender;
                if (!endedIt)
                {
                    if (ender.Kind == HistoryOpKind.Create || (ender.Kind == HistoryOpKind.DeleteAll && !(_birth[key.Id]!.End < ender.Start)))
                    {
                        continue;
                    }

                    var noOtherRunning = enders.All(o => o == ender || o.Start >= ender.End || (o.Outcome == HistoryOutcome.Ok && o.End < ender.End));
                    if (!noOtherRunning)
                    {
                        continue;
                    }
                }

                if (ender.End < best.Deadline)
                {
                    best = (ender.End, ender);
                }
            }

            return best;
        }

        private void CheckEnded()
        {
            foreach (var key in _keys.Where(k => _deadline[k.Id] != Never))
            {
                foreach (var op in _onKey[key.Id].Where(o => o.Outcome == HistoryOutcome.Ok && o.Start > _deadline[key.Id]))
                {
                    _callsAfterEnd++;
                    if (op.SawLive)
                    {
                        var by = _deadlineBy[key.Id]!;
                        Report($"(a) {Describe(op)} found {Describe(key)} live{VersionText(op)}, {Milliseconds(op.Start - by.End)} ms after {Describe(by)} returned");
                    }
                }
            }
        }

        private void CheckVersions()
        {
            foreach (var lineage in _keys.GroupBy(k => k.Lineage))
            {
                var ops = lineage.SelectMany(k => _onKey[k.Id]).Where(o => o.Outcome == HistoryOutcome.Ok).ToList();
                var acknowledged = ops.Where(o => o.Kind == HistoryOpKind.Update && o.Found && !o.Conflict).OrderBy(o => o.End).ToList();
                if (acknowledged.Count == 0)
                {
                    continue;
                }

                // Highest version acknowledged by the time each update returned, for a search by start time.
                var ends = acknowledged.Select(o => o.End).ToArray();
                var highest = new HistoryOp[acknowledged.Count];
                for (var i = 0; i < acknowledged.Count; i++)
                {
                    highest[i] = i > 0 && highest[i - 1].Version >= acknowledged[i].Version ? highest[i - 1] : acknowledged[i];
                }

                foreach (var op in ops.Where(o => o.SawLive && o.Kind is HistoryOpKind.Validate or HistoryOpKind.Update or HistoryOpKind.Rotate))
                {
                    var count = CountBelow(ends, op.Start);
                    if (count == 0)
                    {
                        continue;
                    }

                    _answersAfterUpdate++;
                    var bound = highest[count - 1];
                    if (op.Version < bound.Version)
                    {
                        Report($"(b) {Describe(op)} saw version {op.Version} of {Describe(_keys[op.Key])}, {Milliseconds(op.Start - bound.End)} ms after {Describe(bound)} returned version {bound.Version}");
                    }
                }
            }
        }

        /// <summary>How many of the ascending <paramref name="sorted"/> are below <paramref name="value"/>.</summary>
        private static int CountBelow(long[] sorted, long value)
        {
            int low = 0, high = sorted.Length;
            while (low < high)
            {
                var middle = (low + high) / 2;
                if (sorted[middle] < value)
                {
                    low = middle + 1;
                }
                else
                {
                    high = middle;
                }
            }

            return low;
        }

        private void CheckLost()
        {
            foreach (var op in _ops.Where(o => o.SawNone))
            {
                if (CertainlyLive(op.Key, op.Start, op.End, except: op))
                {
                    Report($"(c) {Describe(op)} found no session for {Describe(_keys[op.Key])}, which nothing could have ended (created by {Describe(_birth[op.Key]!)})");
                }
            }

            // After the run: the last token of every session with acknowledged updates still reads (versions: rule b).
            foreach (var lineage in _keys.GroupBy(k => k.Lineage))
            {
                var acknowledged = lineage.SelectMany(k => _onKey[k.Id]).Where(o => o.Outcome == HistoryOutcome.Ok && o.Kind == HistoryOpKind.Update && o.Found && !o.Conflict).ToList();
                var last = lineage.Where(k => _birth[k.Id] is not null).MaxBy(k => _birth[k.Id]!.End);
                if (acknowledged.Count == 0 || last is null)
                {
                    continue;
                }

                var final = _onKey[last.Id].Where(o => o.Quiescent && o.Kind == HistoryOpKind.Validate).ToList();
                if (final.Count == 0)
                {
                    continue;
                }

                var highest = acknowledged.Max(o => o.Version);
                if (final.Any(o => o.Outcome == HistoryOutcome.Ok && o.Found && o.Version >= highest))
                {
                    _confirmed++;
                }
                else if (final.All(o => o.Outcome != HistoryOutcome.Ok) && CertainlyLive(last.Id, final.Min(o => o.Start), final.Max(o => o.End)))
                {
                    Report($"(c) {Describe(last)}, updated to version {highest}, could not be read after the run ({final.Count} attempts failed)");
                }
            }
        }

        private void CheckLimit()
        {
            foreach (var (user, keys) in _userKeys)
            {
                Sweep(user, keys);
            }

            foreach (var op in _ops.Where(o => o.Outcome == HistoryOutcome.Ok && o.UserId is not null))
            {
                if (op.Kind == HistoryOpKind.Count)
                {
                    _limitChecks++;
                    if (op.Count > _limit)
                    {
                        Report($"(d) {Describe(op)} counted {op.Count} sessions for user {op.UserId}, over the limit of {_limit}");
                    }
                }
                else if (op.Kind == HistoryOpKind.List && op.Listed is { } listed)
                {
                    _limitChecks++;
                    if (listed.Count > _limit)
                    {
                        Report($"(d) {Describe(op)} listed {listed.Count} sessions for user {op.UserId}, over the limit of {_limit}");
                    }

                    foreach (var key in _userKeys.GetValueOrDefault(op.UserId!, []))
                    {
                        var shown = listed.Contains(key.SessionId);
                        if (shown && _deadline[key.Id] < op.Start)
                        {
                            Report($"(d) {Describe(op)} listed {Describe(key)} after {Describe(_deadlineBy[key.Id]!)} ended it");
                        }
                        else if (!shown && CertainlyLive(key.Id, op.Start, op.End))
                        {
                            Report($"(d) {Describe(op)} left out {Describe(key)}, which nothing could have ended");
                        }
                    }
                }
            }
        }

        /// <summary>
        /// A session answered live by a call while none of its enders could be running was live from its creation's
        /// return to that call's start; more such intervals of one user overlapping than the limit is an anomaly.
        /// </summary>
        private void Sweep(string user, List<HistoryKey> keys)
        {
            var events = new List<(long At, int Change, HistoryKey Key)>();
            foreach (var key in keys)
            {
                if (_birth[key.Id] is not { } birth)
                {
                    continue;
                }

                var enders = _enders[key.Id];
                var lastSeen = _onKey[key.Id]
                    .Where(o => o.SawLive && o.Start >= birth.End)
                    .OrderByDescending(o => o.Start)
                    .FirstOrDefault(o => !enders.Any(e => e.Start < o.End && (e.Outcome != HistoryOutcome.Ok || e.End > o.Start)));
                if (lastSeen is not null)
                {
                    events.Add((birth.End, +1, key));
                    events.Add((lastSeen.Start, -1, key));
                }
            }

            var live = new HashSet<HistoryKey>();
            var reported = false;
            foreach (var (at, change, key) in events.OrderBy(e => e.At).ThenByDescending(e => e.Change))
            {
                if (change > 0)
                {
                    live.Add(key);
                    _mostLive = Math.Max(_mostLive, live.Count);
                    if (live.Count > _limit && !reported)
                    {
                        reported = true;
                        Report($"(d) user {user} had {live.Count} sessions live at once at +{Seconds(at)} s, over the limit of {_limit}: " +
                            string.Join(", ", live.Select(Describe)));
                    }
                }
                else
                {
                    live.Remove(key);
                    reported &= live.Count > _limit;
                }
            }
        }

        /// <summary>Created before <paramref name="from"/> and nothing that could end it started before <paramref name="to"/>.</summary>
        private bool CertainlyLive(int key, long from, long to, HistoryOp? except = null) =>
            _birth[key] is { } birth && birth.End < from &&
            (except is null ? _firstEnderStart[key] > to : !_enders[key].Any(e => e != except && e.Start < to));

        private void Report(string anomaly) => _anomalies.Add(anomaly);

        private string Describe(HistoryOp op) =>
            $"{op.Kind.ToString().ToLowerInvariant()} #{op.Index} via {op.Process} at +{Seconds(op.Start)} s";

        private static string Describe(HistoryKey key) => $"session {SessionIds.ForLog(key.SessionId)} (key {key.Id}, user {key.UserId})";

        private static string VersionText(HistoryOp op) => op.Kind is HistoryOpKind.Validate or HistoryOpKind.Update ? $" (version {op.Version})" : "";

        private string Seconds(long ticks) => ((ticks - _origin) / (double)_ticksPerSecond).ToString("0.000", CultureInfo.InvariantCulture);

        private string Milliseconds(long ticks) => (ticks * 1000.0 / _ticksPerSecond).ToString("0.0", CultureInfo.InvariantCulture);

        private static void Add<T>(Dictionary<string, List<T>> lists, string user, T item)
        {
            if (!lists.TryGetValue(user, out var list))
            {
                lists[user] = list = [];
            }

            list.Add(item);
        }
    }
}
