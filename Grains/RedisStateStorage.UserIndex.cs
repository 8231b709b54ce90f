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

    // ARGV: expected etag ("" for no index), new etag, TTL in milliseconds ("0" for none), "1" to drop every entry
    // first, then (session id, entry) pairs, an empty entry for one to delete. 1 when written.
    private const string WriteIndexScript =
        """
        if (redis.call('HGET', KEYS[1], '#') or '') ~= ARGV[1] then return 0 end
        if ARGV[4] == '1' then redis.call('DEL', KEYS[1]) end
        redis.call('HSET', KEYS[1], '#', ARGV[2])
        for i = 5, #ARGV, 2 do
          if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
        end
        if ARGV[3] == '0' then redis.call('PERSIST', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
        return 1
        """;

    // ARGV: expected etag. 1 when deleted.
    private const string CompareAndDeleteIndexScript =
        """
        if (redis.call('HGET', KEYS[1], '#') or '') ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1])
        return 1
        """;

    /// <summary>The entries as Redis holds them, for each index state object read or written here.</summary>
    private readonly ConditionalWeakTable<UserSessionsState, Dictionary<string, SessionSummary>> _storedEntries = [];

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
        _storedEntries.AddOrUpdate(state, new Dictionary<string, SessionSummary>(state.Sessions, StringComparer.Ordinal));
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
        var stored = expectedEtag is null ? null : _storedEntries.TryGetValue(state, out var known) ? known : null;
        var changed = new List<(string SessionId, SessionSummary? Entry)>();
        foreach (var (sessionId, summary) in state.Sessions)
        {
            if (stored is null || !stored.TryGetValue(sessionId, out var old) || !ReferenceEquals(old, summary))
            {
                changed.Add((sessionId, summary));
            }
        }

        if (stored is not null && stored.Count + changed.Count > state.Sessions.Count)
        {
            changed.AddRange(stored.Keys.Where(id => !state.Sessions.ContainsKey(id)).Select(id => (id, (SessionSummary?)null)));
        }

        RedisValue[] arguments =
        [
            expectedEtag is null ? RedisValue.EmptyString : Convert.FromHexString(expectedEtag),
            etag,
            Milliseconds(TimeToLive(state)),
            // An index with an etag but no entries known here (not read through this storage): rewrite it whole.
            expectedEtag is not null && stored is null ? "1" : "0",
            .. changed.SelectMany(c => new RedisValue[] { c.SessionId, c.Entry is null ? RedisValue.EmptyString : CompactStateCodec.EncodeSummary(c.Entry) }),
        ];
        var result = await database.ScriptEvaluateAsync(WriteIndexScript, [KeyOf(serviceId, grainId)], arguments).ConfigureAwait(false);
        if ((int)result != 1)
        {
            return false;
        }

        if (stored is null)
        {
            _storedEntries.AddOrUpdate(state, new Dictionary<string, SessionSummary>(state.Sessions, StringComparer.Ordinal));
        }
        else
        {
            foreach (var (sessionId, entry) in changed)
            {
                if (entry is null)
                {
                    stored.Remove(sessionId);
                }
                else
                {
                    stored[sessionId] = entry;
                }
            }
        }

        return true;
    }
}
