using Orleans.Concurrency;

namespace SessionGrains;

/// <summary>
/// The silo end of validation batching: an external client (a frontend) sends the validations it has
/// waiting as one message, and this grain, a stateless worker on the silo that receives it, passes each
/// to its session grain and answers them together. Each validation is still decided by its own session
/// grain from memory; only the network message is shared. A frontend's validation rate is otherwise
/// bound by Orleans' cost per message, not by the grains (README, "Performance").
/// </summary>
[Alias("sessiongrains.session-validation")]
public interface ISessionValidationGrain : IGrainWithIntegerKey
{
    /// <summary>Most validations in one batch; a longer batch is refused.</summary>
    const int MaxBatchSize = 256;

    /// <summary>
    /// Validates each session as <see cref="ISessionGrain.ValidateAsync"/> does; the answers are in the
    /// order of <paramref name="validations"/>, and one validation's failure is its own answer only.
    /// </summary>
    [Alias("validate-many")]
    Task<SessionValidationResult[]> ValidateManyAsync(SessionValidationRequest[] validations);
}

/// <summary>
/// One validation of a batch: a session id (never a token), where the request came from, and, from a
/// frontend's near cache, the lease it asks for (<see cref="ISessionGrain.ValidateLeasedAsync"/>).
/// </summary>
[GenerateSerializer, Immutable, Alias("sessiongrains.session-validation-request")]
public readonly record struct SessionValidationRequest(
    [property: Id(0)] string SessionId,
    [property: Id(1)] ClientInfo? Client,
    [property: Id(2)] LeaseRequest? Lease = null);

/// <summary>
/// The answer to one validation of a batch: the live session (or null) with the lease granted (zero when none
/// was asked for or given), or the exception the session grain threw.
/// </summary>
[GenerateSerializer, Immutable, Alias("sessiongrains.session-validation-result")]
public readonly record struct SessionValidationResult(
    [property: Id(0)] SessionInfo? Session,
    [property: Id(1)] Exception? Failure,
    [property: Id(2)] TimeSpan Lease = default,
    [property: Id(3)] int Budget = 0,
    [property: Id(4)] DateTimeOffset? SignalsUntil = null);
