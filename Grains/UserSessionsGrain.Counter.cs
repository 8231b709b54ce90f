namespace SessionGrains;

/// <summary>Counter forwarding: every change in live sessions goes to one of the counter shards (<see cref="SessionCounterGrain"/>).</summary>
internal sealed partial class UserSessionsGrain
{
    // This user's counter shard, resolved once (GetGrain looks up the interface's attributes on every call).
    private ISessionCounterGrain? _counter;

    /// <summary>The counter shard a user's changes go to.</summary>
    internal static int CounterShard(string userId) => (int)(StableHash.Of(userId) % ISessionCounterGrain.Shards);

    /// <summary>Passes a change in this user's live sessions to the user's counter shard.</summary>
    private async Task ForwardToCounterAsync(int liveDelta)
    {
        if (liveDelta != 0)
        {
            _counter ??= GrainFactory.GetGrain<ISessionCounterGrain>(CounterShard(UserId));
            await _counter.AddAsync(liveDelta);
        }
    }
}
