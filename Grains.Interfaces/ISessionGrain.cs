using Orleans.Concurrency;

namespace SessionGrains;

/// <summary>
/// One session, keyed by its public session id (SHA-256 of the token, base64url). The grain answers
/// validations from memory and checks the idle and absolute expiry on every call.
/// </summary>
/// <remarks>
/// This is what a frontend calls. Creating, rotating and ending go through <see cref="IUserSessionsGrain"/>, the
/// single place that does them, so a user's index and sessions never disagree.
/// </remarks>
[Alias("sessiongrains.session")]
public interface ISessionGrain : IGrainWithStringKey
{
    /// <summary>Returns the live session and slides its idle timeout, or null when there is none.</summary>
    [Alias("validate")]
    Task<SessionInfo?> ValidateAsync(ClientInfo? client);

    /// <summary>
    /// Validates as <see cref="ValidateAsync"/> does and, when the answer can be reused, lends the frontend the
    /// right to answer further validations of the session from memory for a while (a lease): the grain calls
    /// <see cref="LeaseRequest.Holder"/> back before the session changes. A renewal validates nothing of its own.
    /// </summary>
    [Alias("validate-leased")]
    Task<LeasedValidation> ValidateLeasedAsync(ClientInfo? client, LeaseRequest lease);

    /// <summary>Returns the live session without sliding, or null.</summary>
    [Alias("peek")]
    Task<SessionInfo?> PeekAsync();

    /// <summary>Applies a change. Calls are processed one at a time, so concurrent updates never lose each other.</summary>
    [Alias("update")]
    Task<SessionUpdateResult> UpdateAsync(SessionUpdate change, long? expectedVersion);

    /// <summary>
    /// Applies a change for a frontend that has already dropped its own copy of the session: every other holder
    /// is called back, and the updated session comes with a lease, so the frontend's next validation is answered
    /// from its memory.
    /// </summary>
    [Alias("update-leased")]
    Task<LeasedUpdate> UpdateLeasedAsync(SessionUpdate change, long? expectedVersion, LeaseRequest lease);
}

/// <summary>Outcome of <see cref="ISessionGrain.UpdateAsync"/>.</summary>
/// <param name="Session">The updated session; null when not found or on a version conflict.</param>
/// <param name="CurrentVersion">On a version conflict, the session's version; otherwise null.</param>
[GenerateSerializer, Immutable, Alias("sessiongrains.session-update-result")]
public sealed record class SessionUpdateResult(
    [property: Id(0)] SessionInfo? Session,
    [property: Id(1)] long? CurrentVersion);
