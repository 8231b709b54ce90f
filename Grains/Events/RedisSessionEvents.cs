using System.Globalization;
using System.Text.Json;
using StackExchange.Redis;

namespace SessionGrains;

/// <summary>
/// How a session event is kept in the Redis stream <c>{serviceId}/events</c>: one entry per event, with readable
/// fields (<c>kind</c>, <c>user</c>, <c>session</c>, <c>previous</c>, <c>reason</c>, <c>signals</c>, <c>at</c> in Unix
/// milliseconds), so the stream can be read with redis-cli too. The entry id is the event's position.
/// </summary>
internal static class RedisSessionEvents
{
    /// <summary>The stream's key, and the pub/sub channel told of each append.</summary>
    public static string StreamKey(string serviceId) => serviceId + "/events";

    /// <summary>An event's fields as Lua script arguments: a count, then name/value pairs (only the fields it has).</summary>
    public static IEnumerable<RedisValue> ToScriptArguments(SessionEvent e)
    {
        var fields = Fields(e).ToList();
        yield return fields.Count * 2;
        foreach (var field in fields)
        {
            yield return field.Name;
            yield return field.Value;
        }
    }

    public static NameValueEntry[] ToEntry(SessionEvent e) => [.. Fields(e)];

    private static IEnumerable<NameValueEntry> Fields(SessionEvent e)
    {
        yield return new("kind", Name(e.Kind));
        yield return new("user", e.UserId);
        yield return new("session", e.SessionId);
        if (e.PreviousSessionId is { } previous)
        {
            yield return new("previous", previous);
        }

        if (e.EndReason is { } reason)
        {
            yield return new("reason", Name(reason));
        }

        if (e.Signals != SessionSignals.None)
        {
            yield return new("signals", e.Signals.ToString());
        }

        yield return new("at", e.At.ToUnixTimeMilliseconds());
    }

    /// <summary>The event an entry holds; null for an entry this build cannot read (written by a later one).</summary>
    public static SessionEvent? FromEntry(StreamEntry entry)
    {
        string? kind = null, user = null, session = null, previous = null, reason = null, signals = null;
        long? at = null;
        foreach (var field in entry.Values)
        {
            switch ((string?)field.Name)
            {
                case "kind": kind = field.Value; break;
                case "user": user = field.Value; break;
                case "session": session = field.Value; break;
                case "previous": previous = field.Value; break;
                case "reason": reason = field.Value; break;
                case "signals": signals = field.Value; break;
                case "at": at = (long)field.Value; break;
            }
        }

        if (!Enum.TryParse<SessionEventKind>(kind, ignoreCase: true, out var parsedKind) || user is null || session is null || at is null)
        {
            return null;
        }

        return new SessionEvent(parsedKind, user, session, DateTimeOffset.FromUnixTimeMilliseconds(at.Value))
        {
            Position = entry.Id!,
            PreviousSessionId = previous,
            EndReason = Enum.TryParse<SessionEndReason>(reason, ignoreCase: true, out var r) ? r : null,
            Signals = Enum.TryParse<SessionSignals>(signals, ignoreCase: true, out var s) ? s : SessionSignals.None,
        };
    }

    /// <summary>An enum value as the stream and the HTTP API spell it: camelCase (<c>revokedAll</c>).</summary>
    public static string Name<T>(T value)
        where T : struct, Enum => JsonNamingPolicy.CamelCase.ConvertName(value.ToString());

    /// <summary>Orders two stream ids (<c>milliseconds-sequence</c>).</summary>
    public static int Compare(string left, string right)
    {
        static (ulong Ms, ulong Seq) Parse(string id)
        {
            var dash = id.IndexOf('-', StringComparison.Ordinal);
            return dash < 0
                ? (ulong.Parse(id, CultureInfo.InvariantCulture), 0)
                : (ulong.Parse(id.AsSpan(0, dash), CultureInfo.InvariantCulture), ulong.Parse(id.AsSpan(dash + 1), CultureInfo.InvariantCulture));
        }

        return Parse(left).CompareTo(Parse(right));
    }

    /// <summary>A position as Redis takes it; throws <see cref="ArgumentException"/> for anything but a stream id.</summary>
    public static string CheckedPosition(string position)
    {
        var dash = position.IndexOf('-', StringComparison.Ordinal);
        var valid = position == SessionEvent.Beginning
            || (dash > 0 && ulong.TryParse(position.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out _)
                && ulong.TryParse(position.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out _));
        return valid ? position : throw new ArgumentException("Not a position of this event log.", nameof(position));
    }
}

/// <summary>
/// The event log as a Redis stream, trimmed to about <see cref="SessionEventOptions.RetainedEvents"/> entries. Each
/// append publishes on the stream's channel, which wakes this silo's waiting readers; they also look again every
/// second, so a lost notice delays an event by a second at most.
/// </summary>
internal sealed class RedisSessionEventLog(string serviceId, RedisConnection redis, SessionEventOptions options) : ISessionEventLog
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);
    private readonly string _key = RedisSessionEvents.StreamKey(serviceId);
    private TaskCompletionSource _appended = NewSignal();
    private Task? _subscription;

    public async Task AppendAsync(IReadOnlyList<SessionEvent> events)
    {
        var database = await redis.GetDatabaseAsync().ConfigureAwait(false);
        foreach (var e in events)
        {
            await database.StreamAddAsync(_key, RedisSessionEvents.ToEntry(e), maxLength: options.RetainedEvents, useApproximateMaxLength: true).ConfigureAwait(false);
        }

        await database.PublishAsync(RedisChannel.Literal(_key), "").ConfigureAwait(false);
    }

    public async Task<SessionEventBatch> ReadAsync(string after, int max)
    {
        var database = await redis.GetDatabaseAsync().ConfigureAwait(false);
        var start = after == SessionEvent.Beginning ? "-" : "(" + RedisSessionEvents.CheckedPosition(after);
        var entries = await database.StreamRangeAsync(_key, start, "+", max).ConfigureAwait(false);
        var events = entries.Select(RedisSessionEvents.FromEntry).OfType<SessionEvent>().ToArray();
        var trimmed = after != SessionEvent.Beginning && await TrimmedAfterAsync(database, after).ConfigureAwait(false);
        return new SessionEventBatch(events, entries.Length == 0 ? after : entries[^1].Id!, trimmed);
    }

    /// <summary>
    /// Whether the stream may have lost entries after <paramref name="after"/> to trimming: it no longer holds that
    /// entry (its first is later). Redis does not record what trimming removed, so a reader whose own last entry was
    /// the last one trimmed is told too: it rebuilds once where it need not have.
    /// </summary>
    private async Task<bool> TrimmedAfterAsync(IDatabase database, string after)
    {
        var first = await database.StreamRangeAsync(_key, "-", "+", 1).ConfigureAwait(false);
        return first.Length == 1 && RedisSessionEvents.Compare(after, first[0].Id!) < 0;
    }

    public async Task<string> EndAsync()
    {
        var database = await redis.GetDatabaseAsync().ConfigureAwait(false);
        var last = await database.StreamRangeAsync(_key, "-", "+", 1, Order.Descending).ConfigureAwait(false);
        return last.Length == 0 ? SessionEvent.Beginning : last[0].Id!;
    }

    public async Task WaitAsync(string after, TimeSpan wait)
    {
        await SubscribeOnceAsync().ConfigureAwait(false);
        var appended = Volatile.Read(ref _appended).Task;

        // An append between the caller's read and taking the signal above would otherwise wait for the next poll.
        if (await EndAsync().ConfigureAwait(false) != after)
        {
            return;
        }

        await Task.WhenAny(appended, Task.Delay(wait < PollInterval ? wait : PollInterval)).ConfigureAwait(false);
    }

    /// <summary>Subscribes this silo to the stream's channel once; again after a failed attempt.</summary>
    private Task SubscribeOnceAsync()
    {
        var subscription = Volatile.Read(ref _subscription);
        if (subscription is null || subscription.IsFaulted)
        {
            // Two callers racing here may both subscribe: a second handler only wakes readers twice.
            subscription = SubscribeAsync();
            Volatile.Write(ref _subscription, subscription);
        }

        return subscription;
    }

    private async Task SubscribeAsync()
    {
        var database = await redis.GetDatabaseAsync().ConfigureAwait(false);
        await database.Multiplexer.GetSubscriber().SubscribeAsync(RedisChannel.Literal(_key), (_, _) =>
            Interlocked.Exchange(ref _appended, NewSignal()).TrySetResult()).ConfigureAwait(false);
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
