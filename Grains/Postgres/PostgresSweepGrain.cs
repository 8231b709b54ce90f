using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Configuration;

namespace SessionGrains;

/// <summary>
/// PostgreSQL only: once an hour, the session rows nothing has written for <see cref="StaleAfter"/> are asked to
/// check their expiry (<see cref="ISessionLifecycleGrain.CheckExpiryAsync"/>), the same check a bucket makes. It
/// catches the sessions whose expiry bucket never heard of them (a silo crash loses up to a second of a bucket's
/// adds): on Redis their key's TTL removes them; PostgreSQL has no TTL, so without this their rows would stay. An
/// expired one ends (its row and index entry go); a live one is filed in a bucket again and its row rewritten. The same
/// pass trims the session event log to its newest <see cref="SessionEventOptions.RetainedEvents"/> events
/// (<see cref="PostgresSessionEventLog.TrimAsync"/>): PostgreSQL has no capped table, and trimming in every append
/// would cost each one a count of the log.
/// </summary>
/// <remarks>
/// One grain for the cluster, started by every silo (<see cref="PostgresSweepStart"/>; registering the reminder is
/// idempotent). Rows are taken in order of their last write, from where the last pass stopped, at most
/// <see cref="RowsPerPass"/> a pass: a pass costs one indexed-by-nothing scan of the table and a grain call per row,
/// and rows that buckets clean in time are never seen.
/// </remarks>
[GrainType(SiloGrainTypeNames.PostgresSweep)]
internal sealed partial class PostgresSweepGrain(
    [PersistentState("sweep", StorageNames.UserIndex)] IPersistentState<PostgresSweepState> state,
    IOptions<SessionClusterOptions> cluster,
    IOptions<ClusterOptions> clusterIds,
    PostgresSessionEventLog events,
    ILogger<PostgresSweepGrain> logger) : Grain, IPostgresSweepGrain, IRemindable
{
    private const string ReminderName = "sweep";

    /// <summary>How often the sweep runs (the seed's relational design cleans up hourly too).</summary>
    public static readonly TimeSpan Period = TimeSpan.FromHours(1);

    /// <summary>Rows written since are left to their buckets: far longer than a bucket's width plus its retries.</summary>
    public static readonly TimeSpan StaleAfter = TimeSpan.FromHours(1);

    internal const int RowsPerPass = 10_000;

    private const string StaleSessions = """
        SELECT grainidextensionstring, modifiedon FROM orleansstorage
        WHERE serviceid = @service AND graintypestring = 'session' AND grainidextensionstring IS NOT NULL
          AND modifiedon < (now() AT TIME ZONE 'utc') - @staleAfter
          AND (modifiedon, grainidextensionstring) > (@afterTime, @afterId)
        ORDER BY modifiedon, grainidextensionstring
        LIMIT @limit
        """;

    public Task StartAsync() => this.RegisterOrUpdateReminder(ReminderName, Period, Period);

    public async Task ReceiveReminder(string reminderName, TickStatus status) => await SweepAsync(StaleAfter);

    public async Task<int> SweepAsync(TimeSpan staleAfter)
    {
        var stale = await ReadStaleAsync(staleAfter);
        var (failed, _) = await ExpiryChecks.RunAsync(GrainFactory, stale.Select(row => row.SessionId).ToList());

        // A full pass goes on from its last row next time; a short one has reached the end and starts over.
        var last = stale.Count == RowsPerPass ? stale[^1] : default;
        state.State = new PostgresSweepState { AfterTime = last.ModifiedOn, AfterId = last.SessionId ?? string.Empty };
        await state.WriteStateAsync();
        Log.Swept(logger, stale.Count, failed.Count);
        await TrimEventsAsync();
        return stale.Count;
    }

    public async Task<long> TrimEventsAsync()
    {
        try
        {
            var deleted = await events.TrimAsync();
            Log.EventsTrimmed(logger, deleted);
            return deleted;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            // The sessions' part is done and recorded; the log only grows until the next pass.
            Log.EventTrimFailed(logger, e.GetType().Name);
            return 0;
        }
    }

    private async Task<List<(string SessionId, DateTime ModifiedOn)>> ReadStaleAsync(TimeSpan staleAfter)
    {
        await using var database = NpgsqlDataSource.Create(PostgresConfiguration.ForProviders(cluster.Value.Postgres!));
        await using var command = database.CreateCommand(StaleSessions);
        command.Parameters.AddWithValue("service", clusterIds.Value.ServiceId);
        command.Parameters.AddWithValue("staleAfter", staleAfter);
        command.Parameters.AddWithValue("afterTime", state.State.AfterTime);
        command.Parameters.AddWithValue("afterId", state.State.AfterId);
        command.Parameters.AddWithValue("limit", RowsPerPass);
        command.CommandTimeout = 60; // one pass scans the table: longer than a request's query

        var rows = new List<(string, DateTime)>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetString(0), reader.GetDateTime(1)));
        }

        return rows;
    }

    private static partial class Log
    {
        [LoggerMessage(6102, LogLevel.Information, "Swept PostgreSQL for sessions no bucket cleaned up: {Checked} checked, {Failed} checks failed (tried again next pass).")]
        public static partial void Swept(ILogger logger, int @checked, int failed);

        [LoggerMessage(6103, LogLevel.Information, "Trimmed the session event log to its retained events: {Deleted} older ones deleted.")]
        public static partial void EventsTrimmed(ILogger logger, long deleted);

        [LoggerMessage(6104, LogLevel.Warning, "Trimming the session event log failed ({Error}); the next pass tries again.")]
        public static partial void EventTrimFailed(ILogger logger, string error);
    }
}

/// <summary>Where the last full pass of <see cref="PostgresSweepGrain"/> stopped.</summary>
[GenerateSerializer, Alias("sessiongrains.postgres-sweep-state")]
internal sealed class PostgresSweepState
{
    [Id(0)] public DateTime AfterTime { get; set; }

    [Id(1)] public string AfterId { get; set; } = string.Empty;
}

/// <summary>The cluster's one sweep of PostgreSQL for sessions their expiry bucket missed.</summary>
[Alias("sessiongrains.postgres-sweep")]
internal interface IPostgresSweepGrain : IGrainWithIntegerKey
{
    /// <summary>Registers the hourly reminder (idempotent).</summary>
    [Alias("start")]
    Task StartAsync();

    /// <summary>One pass over the rows not written for <paramref name="staleAfter"/>; returns how many it checked.</summary>
    [Alias("sweep")]
    Task<int> SweepAsync(TimeSpan staleAfter);

    /// <summary>Trims the session event log to its retained events (a pass does it too); returns how many went.</summary>
    [Alias("trim-events")]
    Task<long> TrimEventsAsync();
}

/// <summary>Each silo on PostgreSQL makes sure the sweep's reminder is registered once it is active.</summary>
internal sealed class PostgresSweepStart(IGrainFactory grains) : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(PostgresSweepStart), ServiceLifecycleStage.Active, _ => grains.GetGrain<IPostgresSweepGrain>(0).StartAsync());
}
