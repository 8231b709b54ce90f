using System.Diagnostics;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>The store calls a history records.</summary>
public enum HistoryOpKind
{
    Create,
    Validate,
    Update,
    Rotate,
    Delete,
    Revoke,
    DeleteAll,
    List,
    Count,
}

/// <summary>Ok: the answer is known. Indeterminate: the call failed or timed out, so it may or may not have taken effect, at any time after it started.</summary>
public enum HistoryOutcome
{
    Ok,
    Indeterminate,
}

/// <summary>
/// One token the test learnt (from a create or a rotation), by index: histories never hold tokens. A rotation's new
/// token starts a new key in the same <paramref name="Lineage"/> (the key its session was first created as).
/// </summary>
public sealed record class HistoryKey(int Id, string UserId, string SessionId, int Lineage);

/// <summary>
/// One call: who made it, when (test-process timestamps taken before the request was sent and after its answer
/// arrived), what it was given and what it answered.
/// </summary>
public sealed record class HistoryOp
{
    public int Index { get; init; } = -1;

    /// <summary>Which client made the call ("writer", "frontend0", ...).</summary>
    public string Process { get; init; } = "writer";

    public HistoryOpKind Kind { get; init; }

    public long Start { get; init; }

    public long End { get; init; }

    public HistoryOutcome Outcome { get; init; }

    /// <summary>The key the call names (validate, update, rotate, delete; the session a revoke names), or -1.</summary>
    public int Key { get; init; } = -1;

    /// <summary>The user a create, revoke, delete-all, list or count names.</summary>
    public string? UserId { get; init; }

    public long? ExpectedVersion { get; init; }

    /// <summary>The session a delete-all keeps.</summary>
    public string? ExceptSessionId { get; init; }

    /// <summary>Validate, update, rotate: a live session answered. Delete, revoke: true was returned.</summary>
    public bool Found { get; init; }

    /// <summary>The session version answered (validate, update, rotate, create; the current one on a conflict).</summary>
    public long Version { get; init; }

    /// <summary>An update refused because the session was not at the expected version (the session was live).</summary>
    public bool Conflict { get; init; }

    /// <summary>The key a create or rotation returned, or -1.</summary>
    public int NewKey { get; init; } = -1;

    /// <summary>The creation time of the session a create or rotation returned (the limit evicts the oldest).</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>What a delete-all or a count returned.</summary>
    public int Count { get; init; }

    /// <summary>The public ids a list returned.</summary>
    public IReadOnlyList<string>? Listed { get; init; }

    /// <summary>Made after the run, with no writes in flight from the test.</summary>
    public bool Quiescent { get; init; }

    /// <summary>Why an indeterminate call failed (an exception type, never a message).</summary>
    public string? Error { get; init; }

    /// <summary>True for the answers that say the named session was live when the call ran.</summary>
    public bool SawLive => Outcome == HistoryOutcome.Ok && Key >= 0 && Kind switch
    {
        HistoryOpKind.Validate or HistoryOpKind.Rotate or HistoryOpKind.Delete or HistoryOpKind.Revoke => Found,
        HistoryOpKind.Update => Found || Conflict,
        _ => false,
    };

    /// <summary>True for the answers that say the named session was not live when the call ran.</summary>
    public bool SawNone => Outcome == HistoryOutcome.Ok && Key >= 0 && !Found && !Conflict && Kind is
        HistoryOpKind.Validate or HistoryOpKind.Update or HistoryOpKind.Rotate or HistoryOpKind.Delete or HistoryOpKind.Revoke;
}

/// <summary>A thread-safe record of calls and of the keys they learnt; what <see cref="HistoryChecker"/> reads.</summary>
public sealed class HistoryLog(long ticksPerSecond)
{
    private readonly Lock _gate = new();
    private readonly List<HistoryOp> _operations = [];
    private readonly List<HistoryKey> _keys = [];

    /// <summary>A log timed with <see cref="Stopwatch.GetTimestamp"/>.</summary>
    public HistoryLog()
        : this(Stopwatch.Frequency)
    {
    }

    public long TicksPerSecond { get; } = ticksPerSecond;

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _operations.Count;
            }
        }
    }

    public IReadOnlyList<HistoryOp> Operations
    {
        get
        {
            lock (_gate)
            {
                return [.. _operations];
            }
        }
    }

    public IReadOnlyList<HistoryKey> Keys
    {
        get
        {
            lock (_gate)
            {
                return [.. _keys];
            }
        }
    }

    /// <summary>Registers a token learnt from a create (<paramref name="rotatedFrom"/> null) or a rotation.</summary>
    public HistoryKey AddKey(string userId, string sessionId, HistoryKey? rotatedFrom = null)
    {
        lock (_gate)
        {
            var key = new HistoryKey(_keys.Count, userId, sessionId, rotatedFrom?.Lineage ?? _keys.Count);
            _keys.Add(key);
            return key;
        }
    }

    /// <summary>Appends a finished call; returns it with its index.</summary>
    public HistoryOp Add(HistoryOp operation)
    {
        lock (_gate)
        {
            var added = operation with { Index = _operations.Count };
            _operations.Add(added);
            return added;
        }
    }
}
