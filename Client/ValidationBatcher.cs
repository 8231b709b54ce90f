using System.Collections.Concurrent;

namespace SessionGrains;

/// <summary>
/// Sends a frontend's concurrent validations to the cluster in batches (<see cref="ISessionValidationGrain"/>),
/// the way a Redis client pipelines commands: Orleans costs about the same per message whether it carries
/// one validation or fifty (README, "Performance"). Nothing waits to fill a batch: a validation is sent at
/// once while fewer than <see cref="MaxBatchesInFlight"/> batches are out, and only validations that arrive
/// while they are out wait, for the next batch. A lone validation goes straight to its session grain.
/// </summary>
/// <remarks>
/// A batch is answered when its slowest validation is (a session that has to be activated from storage
/// first), so under load one cold session can hold up the warm ones sent with it by a storage read.
/// </remarks>
/// <param name="grains">The frontend's Orleans client.</param>
/// <param name="worthBatching">
/// Checked per validation: when false, it goes straight to its grain (see <see cref="GatewayCount"/>): a
/// frontend's connected silos change while it runs. Stores that never batch do not come here
/// (<see cref="ValidationPaths.Choose"/>).
/// </param>
internal sealed class ValidationBatcher(IGrainFactory grains, Func<bool> worthBatching) : IValidationPath
{
    /// <summary>
    /// Batches out at once: enough to keep both ends busy while answers travel, few enough that batches fill
    /// (chosen by measurement: README, "Performance").
    /// </summary>
    internal const int MaxBatchesInFlight = 4;

    /// <summary>
    /// Stateless-worker keys the batches rotate over: each key is a worker of its own, so batches out together
    /// are mostly fanned out by different activations instead of taking turns in one.
    /// </summary>
    private const int Keys = 16;

    private readonly ConcurrentQueue<Waiting> _waiting = new();

    // Made once: IGrainFactory.GetGrain reads the interface's attributes on every call (see GrainReferences).
    private ISessionValidationGrain[]? _gateways;
    private int _inFlight;
    private int _sent;

    public Task<SessionInfo?> ValidateAsync(string sessionId, ClientInfo? client)
    {
        return worthBatching() ? SessionOf(Enqueue(new SessionValidationRequest(sessionId, client))) : grains.Session(sessionId).ValidateAsync(client);

        static async Task<SessionInfo?> SessionOf(Task<LeasedValidation> answer) => (await answer.ConfigureAwait(false)).Session;
    }

    public Task<LeasedValidation> ValidateLeasedAsync(string sessionId, ClientInfo? client, LeaseRequest lease) =>
        worthBatching() ? Enqueue(new SessionValidationRequest(sessionId, client, lease)) : grains.Session(sessionId).ValidateLeasedAsync(client, lease);

    private Task<LeasedValidation> Enqueue(SessionValidationRequest request)
    {
        var waiting = new Waiting(request);
        _waiting.Enqueue(waiting);
        SendWhileRoom();
        return waiting.Answer.Task;
    }

    /// <summary>Starts batches while validations wait and fewer than <see cref="MaxBatchesInFlight"/> are out.</summary>
    private void SendWhileRoom()
    {
        while (!_waiting.IsEmpty)
        {
            var inFlight = Volatile.Read(ref _inFlight);
            if (inFlight >= MaxBatchesInFlight)
            {
                // A batch that is out picks these up when it is answered (SendAsync's finally).
                return;
            }

            if (Interlocked.CompareExchange(ref _inFlight, inFlight + 1, inFlight) == inFlight)
            {
                _ = SendAsync();
            }
        }
    }

    /// <summary>Takes what waits (up to a batch) and sends it; runs synchronously up to the grain call.</summary>
    private async Task SendAsync()
    {
        var batch = new List<Waiting>(Math.Min(_waiting.Count, ISessionValidationGrain.MaxBatchSize));
        while (batch.Count < ISessionValidationGrain.MaxBatchSize && _waiting.TryDequeue(out var waiting))
        {
            batch.Add(waiting);
        }

        try
        {
            if (batch.Count == 1)
            {
                var (sessionId, client, lease) = batch[0].Request;
                var grain = grains.Session(sessionId);
                batch[0].Answer.TrySetResult(lease is { } leaseRequest
                    ? await grain.ValidateLeasedAsync(client, leaseRequest).ConfigureAwait(false)
                    : new LeasedValidation(await grain.ValidateAsync(client).ConfigureAwait(false), TimeSpan.Zero, 0));
            }
            else if (batch.Count > 1)
            {
                var results = await ValidateManyAsync(batch).ConfigureAwait(false);
                for (var i = 0; i < results.Length; i++)
                {
                    if (results[i].Failure is { } failure)
                    {
                        batch[i].Answer.TrySetException(failure);
                    }
                    else
                    {
                        batch[i].Answer.TrySetResult(new LeasedValidation(results[i].Session, results[i].Lease, results[i].Budget, results[i].SignalsUntil));
                    }
                }
            }
        }
        catch (Exception exception)
        {
            // The call as a whole failed (no gateway, a timeout): every validation in it fails the same way, and
            // each caller's retry policy (SessionStoreRetry) decides for itself, as for a call of its own.
            foreach (var waiting in batch)
            {
                waiting.Answer.TrySetException(exception);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
            SendWhileRoom();
        }
    }

    private async Task<SessionValidationResult[]> ValidateManyAsync(List<Waiting> batch)
    {
        var requests = new SessionValidationRequest[batch.Count];
        for (var i = 0; i < requests.Length; i++)
        {
            requests[i] = batch[i].Request;
        }

        _gateways ??= [.. Enumerable.Range(0, Keys).Select(key => grains.GetGrain<ISessionValidationGrain>(key))];
        var gateway = _gateways[(uint)Interlocked.Increment(ref _sent) % Keys];
        var results = await gateway.ValidateManyAsync(requests).ConfigureAwait(false);
        return results.Length == requests.Length
            ? results
            : throw new InvalidOperationException($"A validation batch of {requests.Length} was answered with {results.Length} results.");
    }

    /// <summary>A validation waiting for its answer; continuations run off the sender so it can send the next batch.</summary>
    private sealed record class Waiting(SessionValidationRequest Request)
    {
        public TaskCompletionSource<LeasedValidation> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
