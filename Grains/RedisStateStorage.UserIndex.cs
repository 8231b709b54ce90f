using System.Runtime.CompilerServices;
using StackExchange.Redis;

namespace SessionGrains;

/// <summary>
/// A user index as a Redis hash: field <c>#</c> holds the etag, every other field is one session's entry, named by
/// its id (<see cref="CompactStateCodec.EncodeSummary"/>). A write sends only the entries that changed since the
/// index was read or last written, so creating or ending a session costs Redis the same for a user with 5,000
/// sessions as for one with one. What changed is found by reference: entries are immutable records, and the
/// grain replaces an entry to change it.
/// </summary>
internal sealed partial class RedisStateStorage
{
    private const string EtagField = "#";

    // Appends the change's session events (UserSessionsState.Unpublished) to the event stream KEYS[2] in the same
    // script as the index write, so the stream has an event exactly for each change written: ARGV[e] is the stream's
    // approximate length limit, ARGV[e + 1] how many arguments the events take, then each event as a field count
    // and its name/value pairs. One notice on the stream's channel wakes waiting readers. It ends with a line break:
    // a raw string drops its last one, and the scripts below start right after it ("end" + "if" would be "endif", a
    // Lua syntax error that failed every index write).
    private const string AppendEventsFunction =
        """
        local function append_events(e)
          local last = e + 1 + tonumber(ARGV[e + 1])
          local i = e + 2
          while i <= last do
            local n = tonumber(ARGV[i])
            redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[e], '*', unpack(ARGV, i + 1, i + n))
            i = i + n + 1
          end
          if last >= e + 2 then redis.call('PUBLISH', KEYS[2], '') end
          return last + 1
        end

        """;

    // ARGV: expected etag ("" for no index), new etag, TTL in milliseconds ("" to leave it), "1" to drop every entry
    // first, the events (from ARGV[5], see above), then (session id, entry) pairs, an empty entry for one to delete.
    // 1 when written. Fields go in chunks of at most 1,000, below Lua's limit on the values one call can take.
    private const string WriteIndexScript = AppendEventsFunction + "\n" +
        """
        if (redis.call('HGET', KEYS[1], '#') or '') ~= ARGV[1] then return 0 end
        local pairs_from = append_events(5)
        if ARGV[4] == '1' then redis.call('DEL', KEYS[1]) end
        local set, del = {'#', ARGV[2]}, {}
        for i = pairs_from, #ARGV, 2 do
          if ARGV[i + 1] == '' then del[#del + 1] = ARGV[i] else set[#set + 1] = ARGV[i]; set[#set + 1] = ARGV[i + 1] end
          if #set >= 2000 then redis.call('HSET', KEYS[1], unpack(set)); set = {} end
          if #del >= 1000 then redis.call('HDEL', KEYS[1], unpack(del)); del = {} end
        end
        if #set > 0 then redis.call('HSET', KEYS[1], unpack(set)) end
        if #del > 0 then redis.call('HDEL', KEYS[1], unpack(del)) end
        if ARGV[3] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
        return 1
        """;

    // ARGV: expected etag, then the events (from ARGV[2]). 1 when deleted.
    private const string CompareAndDeleteIndexScript = AppendEventsFunction + "\n" +
        """
        if (redis.call('HGET', KEYS[1], '#') or '') ~= ARGV[1] then return 0 end
        append_events(2)
        redis.call('DEL', KEYS[1])
        return 1
        """;

    // Whether Redis is a Redis Cluster: learnt on the first write (the connection is open by then), fixed after.
    private bool? _isCluster;

    /// <summary>What Redis holds of each index state object read or written here.</summary>
    private readonly ConditionalWeakTable<UserSessionsState, StoredIndex> _storedIndexes = [];

    /// <summary>Reads a user index; false when there is none in this layout.</summary>
    private async Task<bool> ReadIndexAsync(IDatabase database, GrainId grainId, IGrainState<UserSessionsState> grainState)
    {
        var fields = await database.HashGetAllAsync(KeyOf(serviceId, grainId)).ConfigureAwait(false);
        if (fields.Length == 0)
        {
            return false;
        }

        (grainState.ETag, var state) = ParseIndex(fields);
        grainState.State = state;
        _storedIndexes.AddOrUpdate(state, new StoredIndex(state, expiresAfter: null));
        return true;
    }

    /// <summary>The etag (hex) and state of a stored user index.</summary>
    internal static (string? Etag, UserSessionsState State) ParseIndex(HashEntry[] fields)
    {
        string? etag = null;
        var state = new UserSessionsState();
        state.Sessions.EnsureCapacity(fields.Length - 1);
        foreach (var field in fields)
        {
            if (field.Name == EtagField)
            {
                etag = Convert.ToHexString((byte[])field.Value!);
            }
            else
            {
                var sessionId = field.Name.ToString();
                state.Sessions[sessionId] = CompactStateCodec.DecodeSummary((byte[])field.Value!, sessionId);
            }
        }

        return (etag, state);
    }

    /// <summary>Writes what changed in a user index since it was read or last written here (everything, the first time).</summary>
    private async Task<bool> WriteIndexAsync(IDatabase database, GrainId grainId, IGrainState<UserSessionsState> grainState, string? expectedEtag, byte[] etag)
    {
        var state = grainState.State ?? throw new InvalidOperationException("A user index has state to write.");
        var stored = expectedEtag is null ? null : _storedIndexes.TryGetValue(state, out var known) ? known : null;
        var changed = new List<(string SessionId, SessionSummary? Entry)>();
        foreach (var (sessionId, summary) in state.Sessions)
        {
            if (stored is null || !stored.Entries.TryGetValue(sessionId, out var old) || !ReferenceEquals(old, summary))
            {
                changed.Add((sessionId, summary));
            }
        }

        if (stored is not null && stored.Entries.Count + changed.Count > state.Sessions.Count)
        {
            changed.AddRange(stored.Entries.Keys.Where(id => !state.Sessions.ContainsKey(id)).Select(id => (id, (SessionSummary?)null)));
        }

        // The latest absolute expiry of the index's sessions: a pass over every entry, so taken once.
        var discardableAfter = state.DiscardableAfter;
        RedisValue[] arguments =
        [
            expectedEtag is null ? RedisValue.EmptyString : Convert.FromHexString(expectedEtag),
            etag,
            // The TTL only ever moves later: an end leaves the key's TTL as it was (a later one is harmless).
            stored?.ExpiresAfter is null || discardableAfter > stored.ExpiresAfter ? Milliseconds(TimeToLive(discardableAfter)) : RedisValue.EmptyString,
            // An index with an etag but no entries known here (not read through this storage): rewrite it whole.
            expectedEtag is not null && stored is null ? "1" : "0",
            .. EventArguments(database, state, options.Events.RetainedEvents),
            .. changed.SelectMany(c => new RedisValue[] { c.SessionId, c.Entry is null ? RedisValue.EmptyString : CompactStateCodec.EncodeSummary(c.Entry) }),
        ];
        var result = await database.ScriptEvaluateAsync(WriteIndexScript, [KeyOf(serviceId, grainId), .. EventStreamKeys(database)], arguments).ConfigureAwait(false);
        if ((int)result != 1)
        {
            return false;
        }

        Published(database, state);

        if (stored is null)
        {
            _storedIndexes.AddOrUpdate(state, new StoredIndex(state, discardableAfter));
        }
        else
        {
            stored.Apply(changed, discardableAfter);
        }

        return true;
    }

    /// <summary>Deletes a user index whose last session ended, with the events of that change; false on an etag conflict.</summary>
    private async Task<bool> DeleteIndexAsync(IDatabase database, GrainId grainId, UserSessionsState state, string etag)
    {
        RedisValue[] arguments = [Convert.FromHexString(etag), .. EventArguments(database, state, options.Events.RetainedEvents)];
        var result = await database.ScriptEvaluateAsync(CompareAndDeleteIndexScript, [KeyOf(serviceId, grainId), .. EventStreamKeys(database)], arguments).ConfigureAwait(false);
        if ((int)result != 1)
        {
            return false;
        }

        Published(database, state);
        return true;
    }

    /// <summary>The stream as the scripts' second key; not named on a Redis Cluster, where the scripts append nothing.</summary>
    private RedisKey[] EventStreamKeys(IDatabase database) => IsCluster(database) ? [] : [RedisSessionEvents.StreamKey(serviceId)];

    /// <summary>
    /// The events of the change being written, as <see cref="AppendEventsFunction"/> takes them. None on a Redis
    /// Cluster: a script may only touch keys of one slot, and the index and the stream are in different ones; the
    /// grain appends them right after the write instead.
    /// </summary>
    private List<RedisValue> EventArguments(IDatabase database, UserSessionsState state, int retained)
    {
        var events = IsCluster(database) ? [] : state.Unpublished.SelectMany(RedisSessionEvents.ToScriptArguments).ToList();
        return [retained, events.Count, .. events];
    }

    /// <summary>Marks the events as appended, when the script did append them.</summary>
    private void Published(IDatabase database, UserSessionsState state)
    {
        if (!IsCluster(database))
        {
            state.Unpublished.Clear();
        }
    }

    private bool IsCluster(IDatabase database) =>
        _isCluster ??= database.Multiplexer.GetServers().Any(server => server.ServerType == ServerType.Cluster);

    /// <summary>The entries Redis holds for an index, and the discard time its key's TTL was last set for.</summary>
    private sealed class StoredIndex(UserSessionsState state, DateTimeOffset? expiresAfter)
    {
        public Dictionary<string, SessionSummary> Entries { get; } = new(state.Sessions, StringComparer.Ordinal);

        public DateTimeOffset? ExpiresAfter { get; private set; } = expiresAfter;

        public void Apply(List<(string SessionId, SessionSummary? Entry)> changed, DateTimeOffset? discardableAfter)
        {
            foreach (var (sessionId, entry) in changed)
            {
                if (entry is null)
                {
                    Entries.Remove(sessionId);
                }
                else
                {
                    Entries[sessionId] = entry;
                }
            }

            if (ExpiresAfter is null || discardableAfter > ExpiresAfter)
            {
                ExpiresAfter = discardableAfter;
            }
        }
    }
}
