using System.Collections.Concurrent;

namespace SessionGrains.Benchmarks;

/// <summary>
/// The floor of validation through an external client: the same session grains called straight through the
/// Orleans client, one message per validation, with none of the store around them (no token check, no
/// batching, no retry policy). It shows, in the same run, what one Orleans call costs on this machine next to
/// one Redis GET, which no store built on a grain call per session can go below without batching.
/// </summary>
internal sealed class GrainCallFloorTarget(SessionGrainsTarget external) : ISessionTarget
{
    // Token → session id, worked out once per session outside the measured path (the token check is not Orleans').
    private readonly ConcurrentDictionary<string, string> _sessionIds = new(StringComparer.Ordinal);

    public string Name => "Orleans call per validation (floor)";

    public bool Supports(Workload workload) => workload == Workload.ValidateUniform;

    public async Task<bool> ValidateAsync(string handle) =>
        await external.Grains.Session(_sessionIds.GetOrAdd(handle, SessionIdOf)).ValidateAsync(client: null) is not null;

    private string SessionIdOf(string token) =>
        external.Tokens.TryParse(token, out var parsed) ? parsed.SessionId : throw new ArgumentException("Not a token of this run.", nameof(token));

    public Task<string> CreateAsync(string userId) => throw new NotSupportedException();

    public Task UpdateAsync(string handle, int value) => throw new NotSupportedException();

    public Task<int> ListByUserAsync(string userId) => throw new NotSupportedException();

    public Task<int> DeleteAllForUserAsync(string userId) => throw new NotSupportedException();

    public Task<long> CountAsync() => throw new NotSupportedException();

    public Task StoreManyAsync(int count) => throw new NotSupportedException();

    // The external target owns the client.
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
