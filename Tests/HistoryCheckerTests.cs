using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>
/// The history checker on synthetic histories (times in milliseconds): each rule reports the anomaly planted for it,
/// and legal histories with overlapping and failed calls pass.
/// </summary>
public sealed class HistoryCheckerTests
{
    [Fact]
    public void A_legal_concurrent_history_has_no_anomalies()
    {
        var h = new SyntheticHistory();
        var a = h.Create("u1", 0, 10);
        var b = h.Create("u1", 20, 30);
        h.Validate(a, 40, 45, found: true, version: 1);
        h.Update(a, 50, 60, version: 2);
        h.Validate(a, 55, 70, found: true, version: 1, process: "frontend1"); // overlaps the update: either version
        h.Validate(a, 61, 65, found: true, version: 2);
        h.Revoke(b, 80, 90, ended: true);
        h.Validate(b, 85, 95, found: true, process: "frontend2"); // overlaps the revoke: may still see it
        h.Validate(b, 91, 92, found: false);
        var a2 = h.Rotate(a, 100, 110, version: 2);
        h.Validate(a, 105, 106, found: true, version: 2); // overlaps the rotation
        h.Validate(a, 111, 112, found: false);
        h.Validate(a2, 111, 112, found: true, version: 2);
        var c = h.Create("u1", 120, 130);
        h.Validate(c, 131, 132, found: true);
        h.List("u1", 133, 134, a2, c);
        h.Count("u1", 135, 136, 2);
        h.Validate(a2, 200, 201, found: true, version: 2, quiescent: true);

        var report = h.Check(limit: 2);

        Assert.True(report.Anomalies.Count == 0, report.ToString());
        Assert.True(report.Coverage.CallsAfterEnd >= 2, report.ToString());
        Assert.True(report.Coverage.AnswersAfterUpdate >= 2, report.ToString());
        Assert.Equal(1, report.Coverage.SessionsConfirmedAfterRun);
        Assert.Equal(2, report.Coverage.MostSessionsLiveAtOnce);
    }

    [Fact]
    public void Overlapping_writes_may_take_effect_in_either_order()
    {
        var h = new SyntheticHistory();
        var a = h.Create("u1", 0, 10);
        var b = h.Create("u1", 20, 30);
        h.Update(a, 40, 60, version: 2);
        h.Conflict(a, 45, 55, expected: 1, actual: 2, process: "frontend1"); // the other writer lost the race
        h.Validate(a, 61, 62, found: true, version: 2);
        h.Revoke(b, 40, 60, ended: true);
        h.Delete(b, 42, 58, ended: false, process: "frontend2"); // the revoke got there first
        h.Validate(b, 50, 70, found: true); // overlaps both ends
        var c = h.Create("u1", 80, 100); // c and d overlap: with limit 2 they end a, in an order not known
        var d = h.Create("u1", 85, 105, process: "frontend0");
        h.Validate(a, 90, 95, found: true, version: 2); // during the creates
        h.Validate(a, 110, 111, found: false);
        h.Validate(c, 110, 111, found: true);
        h.Validate(d, 110, 111, found: true);
        h.DeleteAll("u1", 120, 140, count: 2);
        var e = h.Create("u1", 130, 135); // created while the delete-all ran: may survive it
        h.Validate(a, 141, 142, found: false);
        h.Validate(c, 141, 142, found: false);
        h.Validate(d, 141, 142, found: false);
        h.Validate(e, 141, 142, found: true);

        var report = h.Check(limit: 2);

        Assert.True(report.Anomalies.Count == 0, report.ToString());
        Assert.True(report.Coverage.CallsAfterEnd >= 3, report.ToString());
    }

    [Fact]
    public void The_session_the_limit_evicted_is_gone_and_the_others_stay()
    {
        var h = new SyntheticHistory();
        var a = h.Create("u1", 0, 10);
        var b = h.Create("u1", 20, 30);
        var c = h.Create("u1", 40, 50); // limit 2: evicts a, the oldest
        h.Validate(a, 45, 55, found: true); // overlaps the eviction
        h.Validate(a, 60, 61, found: false);
        h.Validate(b, 60, 61, found: true);
        h.Validate(c, 60, 61, found: true);

        var report = h.Check(limit: 2);

        Assert.True(report.Anomalies.Count == 0, report.ToString());
        Assert.Equal(1, report.Coverage.InferredEvictions);
    }

    [Theory]
    [InlineData("revoke")]
    [InlineData("delete")]
    [InlineData("delete-all")]
    [InlineData("rotate")]
    [InlineData("evict")]
    public void A_validation_that_starts_after_its_session_ended_and_succeeds_is_reported(string end)
    {
        var h = new SyntheticHistory();
        var a = h.Create("u1", 0, 10);
        var b = h.Create("u1", 20, 30);
        switch (end)
        {
            case "revoke":
                h.Revoke(a, 40, 50, ended: true);
                break;
            case "delete":
                h.Delete(a, 40, 50, ended: true);
                break;
            case "delete-all":
                h.DeleteAll("u1", 40, 50, count: 2);
                break;
            case "rotate":
                h.Rotate(a, 40, 50);
                break;
            default:
                h.Create("u1", 40, 50); // limit 2: a is the oldest
                break;
        }

        h.Validate(a, 51, 52, found: true, process: "frontend1");

        var report = h.Check(limit: 2);

        var anomaly = Assert.Single(report.Anomalies, a => a.StartsWith("(a)", StringComparison.Ordinal));
        Assert.Contains("validate #", anomaly, StringComparison.Ordinal);
        Assert.Contains("frontend1", anomaly, StringComparison.Ordinal);
    }

    [Fact]
    public void An_end_that_answered_false_bounds_the_session_only_when_no_other_end_may_still_be_running()
    {
        var closed = new SyntheticHistory();
        var a = closed.Create("u1", 0, 10);
        closed.Revoke(a, 20, 30, ended: true);
        closed.Delete(a, 40, 50, ended: false);
        closed.Validate(a, 45, 46, found: true); // after the revoke returned: already an anomaly
        Assert.Single(closed.Check(limit: 5).Anomalies);

        var open = new SyntheticHistory();
        var b = open.Create("u1", 0, 10);
        open.Failed(HistoryOpKind.Revoke, b, 20, 30); // may still be running, waiting for a frontend's lease
        open.Delete(b, 40, 50, ended: false);
        open.Validate(b, 60, 61, found: true);
        var report = open.Check(limit: 5);
        Assert.True(report.Anomalies.Count == 0, report.ToString());
    }

    [Fact]
    public void Failed_calls_may_or_may_not_have_taken_effect()
    {
        var h = new SyntheticHistory();
        var a = h.Create("u1", 0, 10);
        var b = h.Create("u1", 0, 10, process: "frontend0");
        h.Failed(HistoryOpKind.Revoke, a, 20, 30);
        h.Validate(a, 40, 41, found: true); // the revoke did not happen (yet)
        h.Validate(a, 50, 51, found: false); // now it has
        h.Failed(HistoryOpKind.Update, b, 20, 30);
        h.Validate(b, 40, 41, found: true, version: 2); // the update happened
        h.Failed(HistoryOpKind.Create, null, 60, 70, user: "u1"); // may have evicted either
        h.Validate(b, 80, 81, found: false);

        var report = h.Check(limit: 2);

        Assert.True(report.Anomalies.Count == 0, report.ToString());
    }

    [Fact]
    public void A_version_older_than_an_acknowledged_update_is_reported_once_the_update_returned()
    {
        var h = new SyntheticHistory();
        var a = h.Create("u1", 0, 10);
        h.Update(a, 20, 30, version: 2);
        h.Validate(a, 25, 35, found: true, version: 1); // overlaps: legal
        h.Validate(a, 31, 32, found: true, version: 1, process: "frontend2");
        var rotated = h.Rotate(a, 40, 50, version: 2);
        h.Validate(rotated, 51, 52, found: true, version: 1, process: "frontend0"); // the new token carries the session's versions

        var report = h.Check(limit: 5);

        Assert.Equal(2, report.Anomalies.Count);
        Assert.All(report.Anomalies, a => Assert.StartsWith("(b)", a, StringComparison.Ordinal));
        Assert.Contains("frontend2", report.Anomalies[0], StringComparison.Ordinal);
    }

    [Fact]
    public void A_session_nothing_could_end_that_is_gone_or_behind_after_the_run_is_reported()
    {
        var h = new SyntheticHistory();
        var a = h.Create("u1", 0, 10);
        var b = h.Create("u2", 0, 10);
        var c = h.Create("u3", 0, 10);
        h.Update(a, 20, 30, version: 2);
        h.Update(b, 20, 30, version: 2);
        h.Update(c, 20, 30, version: 2);
        h.Validate(a, 100, 101, found: false, quiescent: true);
        h.Validate(b, 100, 101, found: true, version: 1, quiescent: true);
        h.Failed(HistoryOpKind.Validate, c, 100, 101, quiescent: true);

        var report = h.Check(limit: 5);

        Assert.Equal(3, report.Anomalies.Count);
        Assert.Contains(report.Anomalies, a => a.StartsWith("(c)", StringComparison.Ordinal) && a.Contains("found no session", StringComparison.Ordinal));
        Assert.Contains(report.Anomalies, a => a.StartsWith("(b)", StringComparison.Ordinal));
        Assert.Contains(report.Anomalies, a => a.StartsWith("(c)", StringComparison.Ordinal) && a.Contains("could not be read", StringComparison.Ordinal));
        Assert.Equal(0, report.Coverage.SessionsConfirmedAfterRun);
    }

    [Fact]
    public void More_sessions_of_a_user_live_at_once_than_the_limit_are_reported()
    {
        // Two creates overlap, so which one evicted what is not known: only the sessions seen live decide.
        var h = new SyntheticHistory();
        var a = h.Create("u1", 0, 10);
        var b = h.Create("u1", 20, 40);
        var c = h.Create("u1", 30, 50);
        h.Validate(a, 60, 61, found: true);
        h.Validate(b, 60, 61, found: true);
        h.Validate(c, 60, 61, found: true);
        h.List("u1", 70, 71, a, b, c);
        h.Count("u1", 70, 71, 3);

        var report = h.Check(limit: 2);

        Assert.Equal(3, report.Anomalies.Count);
        Assert.All(report.Anomalies, a => Assert.StartsWith("(d)", a, StringComparison.Ordinal));
        Assert.Contains(report.Anomalies, a => a.Contains("3 sessions live at once", StringComparison.Ordinal));
    }

    [Fact]
    public void A_list_that_shows_an_ended_session_or_hides_a_live_one_is_reported()
    {
        var h = new SyntheticHistory();
        var a = h.Create("u1", 0, 10);
        var b = h.Create("u1", 20, 30);
        h.Revoke(a, 40, 50, ended: true);
        h.List("u1", 60, 61, a);

        var report = h.Check(limit: 5);

        Assert.Equal(2, report.Anomalies.Count);
        Assert.Contains(report.Anomalies, x => x.Contains("listed", StringComparison.Ordinal) && x.Contains("after revoke", StringComparison.Ordinal));
        Assert.Contains(report.Anomalies, x => x.Contains("left out", StringComparison.Ordinal));
    }

    [Fact]
    public void A_session_seen_after_a_failed_create_may_have_been_spared_or_evicted()
    {
        var h = new SyntheticHistory();
        var a = h.Create("u1", 0, 10);
        var b = h.Create("u1", 20, 30);
        h.Failed(HistoryOpKind.Create, null, 40, 50, user: "u1");
        var c = h.Create("u1", 60, 70);
        h.Validate(a, 80, 81, found: true); // the failed create never ran, and c evicted... a? not known: no inference
        h.Validate(b, 80, 81, found: false);
        h.Validate(c, 80, 81, found: true);

        var report = h.Check(limit: 2);

        Assert.True(report.Anomalies.Count == 0, report.ToString());
        Assert.Equal(0, report.Coverage.InferredEvictions);
    }

    /// <summary>Builds a history by hand; session ids are readable stand-ins, times are milliseconds.</summary>
    private sealed class SyntheticHistory
    {
        private static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public HistoryLog Log { get; } = new(ticksPerSecond: 1000);

        public HistoryReport Check(int limit) => HistoryChecker.Check(Log, limit);

        public HistoryKey Create(string user, long start, long end, string process = "writer")
        {
            var key = Log.AddKey(user, $"session{Log.Keys.Count:D4}");
            Log.Add(new HistoryOp
            {
                Process = process, Kind = HistoryOpKind.Create, Start = start, End = end, UserId = user,
                NewKey = key.Id, Version = 1, CreatedAt = Epoch.AddMilliseconds(end), Found = true,
            });
            return key;
        }

        public void Validate(HistoryKey key, long start, long end, bool found, long version = 1, string process = "frontend0", bool quiescent = false) =>
            Log.Add(new HistoryOp
            {
                Process = process, Kind = HistoryOpKind.Validate, Start = start, End = end, Key = key.Id, Found = found,
                Version = found ? version : 0, Quiescent = quiescent,
            });

        public void Update(HistoryKey key, long start, long end, long version) =>
            Log.Add(new HistoryOp { Kind = HistoryOpKind.Update, Start = start, End = end, Key = key.Id, Found = true, Version = version, ExpectedVersion = version - 1 });

        public HistoryKey Rotate(HistoryKey key, long start, long end, long version = 1)
        {
            var created = Log.Keys.Single(k => k.Lineage == key.Lineage && k.Id == key.Lineage);
            var next = Log.AddKey(key.UserId, $"session{Log.Keys.Count:D4}", key);
            var createdAt = Log.Operations.Single(o => o.NewKey == created.Id).CreatedAt;
            Log.Add(new HistoryOp { Kind = HistoryOpKind.Rotate, Start = start, End = end, Key = key.Id, Found = true, NewKey = next.Id, Version = version, CreatedAt = createdAt });
            return next;
        }

        public void Conflict(HistoryKey key, long start, long end, long expected, long actual, string process) =>
            Log.Add(new HistoryOp { Process = process, Kind = HistoryOpKind.Update, Start = start, End = end, Key = key.Id, Conflict = true, Version = actual, ExpectedVersion = expected });

        public void Revoke(HistoryKey key, long start, long end, bool ended) =>
            Log.Add(new HistoryOp { Kind = HistoryOpKind.Revoke, Start = start, End = end, Key = key.Id, UserId = key.UserId, Found = ended });

        public void Delete(HistoryKey key, long start, long end, bool ended, string process = "writer") =>
            Log.Add(new HistoryOp { Process = process, Kind = HistoryOpKind.Delete, Start = start, End = end, Key = key.Id, Found = ended });

        public void DeleteAll(string user, long start, long end, int count) =>
            Log.Add(new HistoryOp { Kind = HistoryOpKind.DeleteAll, Start = start, End = end, UserId = user, Count = count });

        public void List(string user, long start, long end, params HistoryKey[] listed) =>
            Log.Add(new HistoryOp { Kind = HistoryOpKind.List, Start = start, End = end, UserId = user, Listed = [.. listed.Select(k => k.SessionId)] });

        public void Count(string user, long start, long end, int count) =>
            Log.Add(new HistoryOp { Kind = HistoryOpKind.Count, Start = start, End = end, UserId = user, Count = count });

        public void Failed(HistoryOpKind kind, HistoryKey? key, long start, long end, string? user = null, bool quiescent = false) =>
            Log.Add(new HistoryOp
            {
                Kind = kind, Start = start, End = end, Key = key?.Id ?? -1, UserId = user ?? key?.UserId,
                Outcome = HistoryOutcome.Indeterminate, Error = "TimeoutException", Quiescent = quiescent,
            });
    }
}
