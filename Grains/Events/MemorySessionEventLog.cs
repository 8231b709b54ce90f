using System.Globalization;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;

namespace SessionGrains;

/// <summary>The in-memory deployment's event log: one grain for the cluster (<see cref="MemorySessionEventLogGrain"/>).</summary>
internal sealed class MemorySessionEventLog(IGrainFactory grains) : ISessionEventLog
{
    private IMemorySessionEventLogGrain Log => grains.GetGrain<IMemorySessionEventLogGrain>(0);

    public Task AppendAsync(IReadOnlyList<SessionEvent> events) => Log.AppendAsync([.. events]);

    public Task<SessionEventBatch> ReadAsync(string after, int max) => Log.ReadAsync(after, max);

    public Task<string> EndAsync() => Log.EndAsync();

    public Task WaitAsync(string after, TimeSpan wait) => Log.WaitAsync(after, wait);
}

[Alias("sessiongrains.memory-event-log")]
internal interface IMemorySessionEventLogGrain : IGrainWithIntegerKey
{
    [Alias("append")]
    Task AppendAsync(SessionEvent[] events);

    [Alias("read"), AlwaysInterleave]
    Task<SessionEventBatch> ReadAsync(string after, int max);

    [Alias("end"), AlwaysInterleave]
    Task<string> EndAsync();

    [Alias("wait"), AlwaysInterleave]
    Task WaitAsync(string after, TimeSpan wait);
}

/// <summary>
/// The last <see cref="SessionEventOptions.RetainedEvents"/> events, in this grain's memory: they go with the
/// cluster, as the in-memory deployment's sessions do. Positions are 1, 2, 3, ... as decimal strings.
/// </summary>
[GrainType(SiloGrainTypeNames.MemoryEventLog), KeepAlive]
internal sealed class MemorySessionEventLogGrain(IOptions<SessionGrainsOptions> options) : Grain, IMemorySessionEventLogGrain
{
    private readonly Queue<SessionEvent> _events = new();
    private readonly int _retained = options.Value.Events.RetainedEvents;
    private long _last;
    private TaskCompletionSource _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task AppendAsync(SessionEvent[] events)
    {
        foreach (var e in events)
        {
            _events.Enqueue(e with { Position = (++_last).ToString(CultureInfo.InvariantCulture) });
            if (_events.Count > _retained)
            {
                _events.Dequeue();
            }
        }

        _appended.TrySetResult();
        _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);
        return Task.CompletedTask;
    }

    public Task<SessionEventBatch> ReadAsync(string after, int max)
    {
        var position = Parse(after);
        var firstRetained = _last - _events.Count + 1;
        var events = _events.Skip((int)Math.Clamp(position - firstRetained + 1, 0, _events.Count)).Take(max).ToArray();

        // Positions have no holes: an event between the one read after and the first kept was trimmed.
        var trimmed = after != SessionEvent.Beginning && position + 1 < firstRetained;
        return Task.FromResult(new SessionEventBatch(events, events.Length == 0 ? after : events[^1].Position, trimmed));
    }

    public Task<string> EndAsync() => Task.FromResult(_last.ToString(CultureInfo.InvariantCulture));

    public async Task WaitAsync(string after, TimeSpan wait)
    {
        if (Parse(after) < _last)
        {
            return;
        }

        await Task.WhenAny(_appended.Task, Task.Delay(wait));
    }

    private static long Parse(string position) =>
        long.TryParse(position, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new ArgumentException("Not a position of this event log.", nameof(position));
}
