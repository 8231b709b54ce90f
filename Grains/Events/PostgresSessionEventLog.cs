using System.Globalization;
using Npgsql;
using NpgsqlTypes;

namespace SessionGrains;

/// <summary>
/// The event log in PostgreSQL: the table <c>sessiongrains_events</c> (<c>Postgres/Schema-2.sql</c>), one row per
/// event, scoped by service id. A position is the row's identity as a decimal string. The index grain appends its
/// events right after its own write (<c>UserSessionsGrain.Events.cs</c>), not in its transaction: Orleans' storage
/// provider owns that one.
/// </summary>
/// <remarks>
/// <para>
/// Appends are serialised by an advisory lock held until they commit. Without it the log could lose events for a
/// reader: an identity is handed out when a row is inserted, not when it commits, so two concurrent appends can take
/// 9 and 10 and commit 10 first; a reader that read up to 10 in between goes on after 10 and never sees 9. With the
/// lock, an append takes its identities only after the previous append has committed, so positions become visible in
/// order and "everything after my last position" is complete. The price: appends of the whole cluster commit one at a
/// time (each holds the lock for its insert and its commit's WAL flush, no round trip to the silo).
/// </para>
/// <para>
/// Every call stops waiting at the grain storage's deadline (<see cref="PostgresConfiguration.ForGrainStorage"/>), so
/// an outage fails within it and never hangs a reader or the index. Waiting readers are woken by this silo's own
/// appends at once and by the other silos' within <see cref="PollInterval"/>: one query per silo polls the log's end
/// while anyone on it waits.
/// </para>
/// </remarks>
internal sealed class PostgresSessionEventLog : ISessionEventLog, IAsyncDisposable
{
    /// <summary>How often a silo with waiting readers looks for events appended by the other silos.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    // After a failed poll (the database away): readers' own reads fail meanwhile, so there is no hurry.
    private static readonly TimeSpan PollRetryInterval = TimeSpan.FromSeconds(1);

    // Any constant, distinct from PostgresSchema's: appends of every cluster in the database queue behind it (service
    // ids share the identity, so they must share the order too).
    private const long AppendLock = 0x5E55_1011_E7E7;

    // A batch's appends (a create is one; a sign-out-everywhere one per session it ends) stay far below Npgsql's and
    // PostgreSQL's limits on an array parameter.
    private const int MaxAppendsPerBatch = 1_000;

    // The trim deletes this many rows a statement, so no statement runs long or holds many row locks.
    private const int TrimChunk = 10_000;
    private const int TrimTimeoutSeconds = 60;

    // The batch's two statements run in one implicit transaction (no explicit BEGIN: Npgsql sends them with one Sync,
    // and PostgreSQL commits at the Sync), so the lock is held until the insert commits, without a second round trip
    // for a COMMIT while every other append waits. Rows are numbered in the events' order (WITH ORDINALITY).
    private const string LockForAppend = "SELECT pg_advisory_xact_lock(@lock)";

    private const string Insert = """
        INSERT INTO sessiongrains_events (service_id, at, kind, user_id, session_id, previous_session_id, end_reason, signals)
        SELECT @service, e.at, e.kind, e.user_id, e.session_id, e.previous_session_id, e.end_reason, e.signals
        FROM unnest(@at, @kind, @user, @session, @previous, @reason, @signals)
            WITH ORDINALITY AS e (at, kind, user_id, session_id, previous_session_id, end_reason, signals, n)
        ORDER BY e.n
        RETURNING position
        """;

    private const string Read = """
        SELECT position, at, kind, user_id, session_id, previous_session_id, end_reason, signals
        FROM sessiongrains_events
        WHERE service_id = @service AND position > @after
        ORDER BY position
        LIMIT @max
        """;

    private const string End = "SELECT coalesce(max(position), 0) FROM sessiongrains_events WHERE service_id = @service";

    // The oldest position kept: a reader after an older one may have lost events to the trim (see ReadCoreAsync).
    private const string Oldest = "SELECT coalesce(min(position), 0) FROM sessiongrains_events WHERE service_id = @service";

    // The oldest position kept: the newest N's last (none when there are fewer, and then nothing goes).
    private const string OldestKept = """
        SELECT position FROM sessiongrains_events WHERE service_id = @service
        ORDER BY position DESC OFFSET @keep - 1 LIMIT 1
        """;

    private const string TrimBefore = """
        DELETE FROM sessiongrains_events WHERE service_id = @service AND position IN (
            SELECT position FROM sessiongrains_events WHERE service_id = @service AND position < @oldestKept
            ORDER BY position LIMIT @chunk)
        """;

    private readonly string _serviceId;
    private readonly NpgsqlDataSource _database;
    private readonly TimeSpan _deadline;
    private readonly int _retained;
    private readonly Lock _pollerGate = new();

    // Appends waiting to be written, and the one batch being written at a time (AppendAsync).
    private readonly System.Collections.Concurrent.ConcurrentQueue<QueuedAppend> _queued = new();
    private readonly SemaphoreSlim _writing = new(1, 1);
    private long _end = -1;
    private int _waiters;
    private int _disposed;
    private Task? _poller;
    private TaskCompletionSource _appended = NewSignal();

    /// <param name="serviceId">The cluster's service id: its events are the rows with it.</param>
    /// <param name="connectionString">The operator's connection string (<c>SessionStore:Postgres</c>).</param>
    /// <param name="options">How many events to keep.</param>
    public PostgresSessionEventLog(string serviceId, string connectionString, SessionEventOptions options)
    {
        _serviceId = serviceId;
        var (storage, deadline) = PostgresConfiguration.ForGrainStorage(connectionString);
        _database = NpgsqlDataSource.Create(storage);
        _deadline = deadline;
        _retained = options.RetainedEvents;
    }

    /// <summary>
    /// Appends in batches (group commit): appends that arrive while one is being written wait, and the next of them to
    /// go writes all that are waiting in one transaction, in the order they came. Under the lock every append of the
    /// database commits one at a time, so one commit per append capped creates at about a thousand a second for the
    /// whole cluster (measured: 726 creates/s against 1,859 before events); a batch pays the lock and the commit once.
    /// </summary>
    public async Task AppendAsync(IReadOnlyList<SessionEvent> events)
    {
        if (events.Count == 0)
        {
            return;
        }

        var mine = new QueuedAppend(events);
        _queued.Enqueue(mine);
        if (!await _writing.WaitAsync(_deadline).ConfigureAwait(false))
        {
            // Still queued: a later batch may write it after all (as a timed-out write may still commit).
            throw new TimeoutException($"The event log did not take the append within {_deadline.TotalSeconds:0.#} s.");
        }

        try
        {
            if (!mine.Done.Task.IsCompleted)
            {
                await WriteQueuedAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _writing.Release();
        }

        await mine.Done.Task.ConfigureAwait(false);
    }

    /// <summary>Writes every queued append (this caller's among them) as one batch, and completes each.</summary>
    private async Task WriteQueuedAsync()
    {
        var batch = new List<QueuedAppend>();
        while (batch.Count < MaxAppendsPerBatch && _queued.TryDequeue(out var queued))
        {
            batch.Add(queued);
        }

        try
        {
            var last = await WithinDeadlineAsync(AppendCoreAsync([.. batch.SelectMany(a => a.Events)])).ConfigureAwait(false);
            Observe(last);
            batch.ForEach(a => a.Done.TrySetResult());
        }
        catch (Exception exception)
        {
            batch.ForEach(a => a.Done.TrySetException(exception));
        }
    }

    private sealed record class QueuedAppend(IReadOnlyList<SessionEvent> Events)
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public Task<SessionEventBatch> ReadAsync(string after, int max)
    {
        var position = Parse(after);
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        return WithinDeadlineAsync(ReadCoreAsync(after, position, max));
    }

    public async Task<string> EndAsync() =>
        Format(await WithinDeadlineAsync(EndCoreAsync()).ConfigureAwait(false));

    public async Task WaitAsync(string after, TimeSpan wait)
    {
        var position = Parse(after);
        if (wait <= TimeSpan.Zero)
        {
            return;
        }

        // The signal first, then the end: an append observed in between still completes the signal taken.
        var appended = Volatile.Read(ref _appended).Task;
        if (Volatile.Read(ref _end) > position)
        {
            return;
        }

        StartWaiting();
        try
        {
            await Task.WhenAny(appended, Task.Delay(wait)).ConfigureAwait(false);
        }
        finally
        {
            lock (_pollerGate)
            {
                _waiters--;
            }
        }
    }

    /// <summary>
    /// Deletes this cluster's events but the newest <see cref="SessionEventOptions.RetainedEvents"/> (the hourly sweep
    /// calls it: <c>PostgresSweepGrain</c>). Answers how many went.
    /// </summary>
    public async Task<long> TrimAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        long oldestKept;
        await using (var command = Command(connection, OldestKept, TrimTimeoutSeconds))
        {
            command.Parameters.AddWithValue("keep", _retained);
            if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not long found)
            {
                return 0;
            }

            oldestKept = found;
        }

        long deleted = 0;
        while (true)
        {
            await using var command = Command(connection, TrimBefore, TrimTimeoutSeconds);
            command.Parameters.AddWithValue("oldestKept", oldestKept);
            command.Parameters.AddWithValue("chunk", TrimChunk);
            var rows = await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            deleted += rows;
            if (rows < TrimChunk)
            {
                return deleted;
            }
        }
    }

    /// <summary>Closes the connections; once, though the container disposes it as the log and as itself.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _writing.Dispose();
            await _database.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task<long> AppendCoreAsync(IReadOnlyList<SessionEvent> events)
    {
        await using var connection = await _database.OpenConnectionAsync().ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(connection);
        var lockCommand = new NpgsqlBatchCommand(LockForAppend);
        lockCommand.Parameters.AddWithValue("lock", AppendLock);
        batch.BatchCommands.Add(lockCommand);

        var insert = new NpgsqlBatchCommand(Insert);
        insert.Parameters.AddWithValue("service", _serviceId);
        insert.Parameters.AddWithValue("at", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz, events.Select(e => e.At.UtcDateTime).ToArray());
        insert.Parameters.AddWithValue("kind", NpgsqlDbType.Array | NpgsqlDbType.Smallint, events.Select(e => (short)e.Kind).ToArray());
        insert.Parameters.AddWithValue("user", NpgsqlDbType.Array | NpgsqlDbType.Text, events.Select(e => e.UserId).ToArray());
        insert.Parameters.AddWithValue("session", NpgsqlDbType.Array | NpgsqlDbType.Text, events.Select(e => e.SessionId).ToArray());
        insert.Parameters.AddWithValue("previous", NpgsqlDbType.Array | NpgsqlDbType.Text, events.Select(e => e.PreviousSessionId).ToArray());
        insert.Parameters.AddWithValue("reason", NpgsqlDbType.Array | NpgsqlDbType.Smallint, events.Select(e => (short?)e.EndReason).ToArray());
        insert.Parameters.AddWithValue("signals", NpgsqlDbType.Array | NpgsqlDbType.Integer, events.Select(e => (int)e.Signals).ToArray());
        batch.BatchCommands.Add(insert);

        long last = 0;
        await using var reader = await batch.ExecuteReaderAsync().ConfigureAwait(false);
        await reader.NextResultAsync().ConfigureAwait(false); // past the lock's result
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            last = Math.Max(last, reader.GetInt64(0));
        }

        return last;
    }

    private async Task<SessionEventBatch> ReadCoreAsync(string after, long position, int max)
    {
        await using var connection = await _database.OpenConnectionAsync().ConfigureAwait(false);
        await using var command = Command(connection, Read);
        command.Parameters.AddWithValue("after", position);
        command.Parameters.AddWithValue("max", max);

        var events = new List<SessionEvent>();
        var last = after;
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            // A row this build cannot read (a kind a later release added) is passed over, not returned: the position still moves on.
            last = Format(reader.GetInt64(0));
            var kind = (SessionEventKind)reader.GetInt16(2);
            if (!Enum.IsDefined(kind))
            {
                continue;
            }

            SessionEndReason? reason = reader.IsDBNull(6) ? null : (SessionEndReason)reader.GetInt16(6);
            events.Add(new SessionEvent(kind, reader.GetString(3), reader.GetString(4), new DateTimeOffset(reader.GetDateTime(1), TimeSpan.Zero))
            {
                Position = last,
                PreviousSessionId = reader.IsDBNull(5) ? null : reader.GetString(5),
                EndReason = reason is { } r && Enum.IsDefined(r) ? r : null,
                Signals = (SessionSignals)reader.GetInt32(7),
            });
        }

        // Positions are shared by every cluster in the database, so they have holes: what can be told is that the
        // reader's own last event is no longer kept, as on Redis.
        var trimmed = false;
        if (position > 0)
        {
            await reader.DisposeAsync().ConfigureAwait(false);
            await using var oldest = Command(connection, Oldest);
            trimmed = (long)(await oldest.ExecuteScalarAsync().ConfigureAwait(false))! > position;
        }

        return new SessionEventBatch([.. events], last, trimmed);
    }

    private async Task<long> EndCoreAsync()
    {
        await using var connection = await _database.OpenConnectionAsync().ConfigureAwait(false);
        await using var command = Command(connection, End);
        var end = (long)(await command.ExecuteScalarAsync().ConfigureAwait(false))!;
        Observe(end);
        return end;
    }

    /// <summary>
    /// A command of this cluster's events. No Npgsql timeout (the deadline stops waiting instead), but for the trim's
    /// statements: they run long and only in the sweep, where a thread held by a cancellation costs no request.
    /// </summary>
    private NpgsqlCommand Command(NpgsqlConnection connection, string sql, int timeoutSeconds = 0)
    {
        var command = new NpgsqlCommand(sql, connection) { CommandTimeout = timeoutSeconds };
        command.Parameters.AddWithValue("service", _serviceId);
        return command;
    }

    private async Task<T> WithinDeadlineAsync<T>(Task<T> pending)
    {
        await Abandon.AfterAsync(pending, _deadline).ConfigureAwait(false);
        return await pending.ConfigureAwait(false);
    }

    /// <summary>Notes a log end seen; a later one than before wakes this silo's waiting readers.</summary>
    private void Observe(long end)
    {
        long seen;
        do
        {
            seen = Volatile.Read(ref _end);
            if (end <= seen)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref _end, end, seen) != seen);

        Interlocked.Exchange(ref _appended, NewSignal()).TrySetResult();
    }

    private void StartWaiting()
    {
        lock (_pollerGate)
        {
            _waiters++;

            // One poller a silo, off any grain's scheduler: it outlives the read that started it.
            _poller ??= Task.Run(PollAsync);
        }
    }

    private async Task PollAsync()
    {
        while (true)
        {
            lock (_pollerGate)
            {
                if (_waiters == 0)
                {
                    _poller = null;
                    return;
                }
            }

            var interval = PollInterval;
            try
            {
                await WithinDeadlineAsync(EndCoreAsync()).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                // The readers' own reads fail and say so; the poll only wakes them, and tries again.
                interval = PollRetryInterval;
            }

            await Task.Delay(interval).ConfigureAwait(false);
        }
    }

    private static long Parse(string position) =>
        long.TryParse(position, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new ArgumentException("Not a position of this event log.", nameof(position));

    private static string Format(long position) => position.ToString(CultureInfo.InvariantCulture);

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
