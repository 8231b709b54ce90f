namespace SessionGrains;

/// <summary>
/// A frontend's near cache as its session grains see it: the holder of leases. A session grain calls every
/// holder of a live lease back before any change to the session returns (update, rotation, end, a client
/// change), so no frontend answers from a copy older than the last acknowledged write. One per frontend process.
/// </summary>
[Alias("sessiongrains.session-cache")]
public interface ISessionCacheObserver : IGrainObserver
{
    /// <summary>
    /// Drops the session from the cache and ends its lease. The answer reports the validations the cache
    /// answered since its last report, so the grain's sliding window and burst count stay exact.
    /// </summary>
    [Alias("recall")]
    Task<LeaseReport> RecallAsync(string sessionId);
}

/// <summary>
/// What a frontend sends with a validation it wants to answer from memory afterwards: who holds the lease,
/// and what it answered from memory under its previous lease of the session since it last told the grain.
/// </summary>
/// <param name="Holder">The frontend's near cache, called back before the session changes.</param>
/// <param name="Report">Validations answered from memory since the last report (none on a first validation).</param>
/// <param name="Renewal">
/// True when no request is behind the call: the frontend renews the lease of a session in use. The reported
/// validations are counted; no validation of its own is.
/// </param>
[GenerateSerializer, Immutable, Alias("sessiongrains.lease-request")]
public readonly record struct LeaseRequest(
    [property: Id(0)] ISessionCacheObserver Holder,
    [property: Id(1)] LeaseReport Report,
    [property: Id(2)] bool Renewal = false);

/// <summary>Validations a frontend answered from memory under a lease, reported to the session's grain.</summary>
/// <param name="Validations">How many.</param>
/// <param name="LastAccessedAt">When the latest was answered (the frontend's clock); null when none was.</param>
[GenerateSerializer, Immutable, Alias("sessiongrains.lease-report")]
public readonly record struct LeaseReport(
    [property: Id(0)] int Validations,
    [property: Id(1)] DateTimeOffset? LastAccessedAt);

/// <summary>A validation's answer with the lease that came with it.</summary>
/// <param name="Session">The live session, or null.</param>
/// <param name="Lease">
/// How long the frontend may answer validations of this session from memory, timed from before it sent the
/// request; zero for no lease (ask again next time).
/// </param>
/// <param name="Budget">How many validations it may answer from memory under the lease before it asks the grain again (the burst count stays exact).</param>
/// <param name="SignalsUntil">
/// While the answer carries a signal that lasts (a burst, many networks): the earliest time it may end, after which
/// the frontend asks the grain again (by the session's clock, like expiry). Null otherwise.
/// </param>
[GenerateSerializer, Immutable, Alias("sessiongrains.leased-validation")]
public readonly record struct LeasedValidation(
    [property: Id(0)] SessionInfo? Session,
    [property: Id(1)] TimeSpan Lease,
    [property: Id(2)] int Budget,
    [property: Id(3)] DateTimeOffset? SignalsUntil = null);

/// <summary>An update's outcome with the lease that came with the updated session.</summary>
/// <param name="Result">What <see cref="ISessionGrain.UpdateAsync"/> would have answered.</param>
/// <param name="Lease">As <see cref="LeasedValidation.Lease"/>; zero when nothing is lent.</param>
/// <param name="Budget">As <see cref="LeasedValidation.Budget"/>.</param>
[GenerateSerializer, Immutable, Alias("sessiongrains.leased-update")]
public readonly record struct LeasedUpdate(
    [property: Id(0)] SessionUpdateResult Result,
    [property: Id(1)] TimeSpan Lease,
    [property: Id(2)] int Budget);
