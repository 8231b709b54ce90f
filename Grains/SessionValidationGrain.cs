using Orleans.Concurrency;

namespace SessionGrains;

/// <summary>
/// Answers a frontend's batch of validations (<see cref="ISessionValidationGrain"/>) by calling each
/// session grain. A stateless worker, so it runs on the silo the batch arrived at, with no directory
/// entry, and reentrant, so one activation fans out several batches at once: it holds no state and
/// only waits on the session grains.
/// </summary>
[GrainType(SiloGrainTypeNames.SessionValidation), StatelessWorker, Reentrant]
internal sealed class SessionValidationGrain(SessionGrainsMetrics metrics) : Grain, ISessionValidationGrain
{
    public async Task<SessionValidationResult[]> ValidateManyAsync(SessionValidationRequest[] validations)
    {
        ArgumentNullException.ThrowIfNull(validations);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(validations.Length, ISessionValidationGrain.MaxBatchSize, nameof(validations));
        metrics.ValidationBatchSize.Record(validations.Length);

        // Every call is sent before any is awaited: the batch costs its slowest session, not their sum.
        var calls = new Task<SessionInfo?>?[validations.Length];
        var leasedCalls = new Task<LeasedValidation>?[validations.Length];
        for (var i = 0; i < validations.Length; i++)
        {
            var (sessionId, client, lease) = validations[i];
            if (!SessionIds.IsWellFormedSessionId(sessionId))
            {
                calls[i] = Task.FromResult<SessionInfo?>(null);
            }
            else if (lease is { } leaseRequest)
            {
                leasedCalls[i] = GrainFactory.Session(sessionId).ValidateLeasedAsync(client, leaseRequest);
            }
            else
            {
                calls[i] = GrainFactory.Session(sessionId).ValidateAsync(client);
            }
        }

        var results = new SessionValidationResult[validations.Length];
        for (var i = 0; i < calls.Length; i++)
        {
            try
            {
                results[i] = leasedCalls[i] is { } leased && await leased is var answer
                    ? new SessionValidationResult(answer.Session, null, answer.Lease, answer.Budget, answer.SignalsUntil)
                    : new SessionValidationResult(await calls[i]!, null);
            }
            catch (Exception exception)
            {
                // This session's failure (a throttled burst, storage down at its activation) is its answer alone.
                results[i] = new SessionValidationResult(null, exception);
            }
        }

        return results;
    }
}
