using System.Diagnostics.Metrics;

namespace SessionGrains;

/// <summary>
/// How a <see cref="SessionStore"/> takes a validation to its session grain. Chosen once, when the store is
/// registered (<see cref="ValidationPaths.Choose"/>), so the path a reader follows is the one that runs.
/// </summary>
internal interface IValidationPath
{
    Task<SessionInfo?> ValidateAsync(string sessionId, ClientInfo? client);

    /// <summary>A validation that asks for a lease (<see cref="ISessionGrain.ValidateLeasedAsync"/>): the near cache's way to the grain.</summary>
    Task<LeasedValidation> ValidateLeasedAsync(string sessionId, ClientInfo? client, LeaseRequest lease);
}

/// <summary>
/// Each validation straight to its session grain: inside a silo (a call to a local grain is no network message,
/// so there is nothing to batch) and in a frontend that does not batch.
/// </summary>
internal sealed class DirectValidation(IGrainFactory grains) : IValidationPath
{
    public Task<SessionInfo?> ValidateAsync(string sessionId, ClientInfo? client) => grains.Session(sessionId).ValidateAsync(client);

    public Task<LeasedValidation> ValidateLeasedAsync(string sessionId, ClientInfo? client, LeaseRequest lease) =>
        grains.Session(sessionId).ValidateLeasedAsync(client, lease);
}

/// <summary>
/// The choice of <see cref="IValidationPath"/>, as <see cref="SessionStoreOptions.NearCache"/> and
/// <see cref="SessionStoreOptions.BatchValidations"/> describe it.
/// </summary>
internal static class ValidationPaths
{
    /// <param name="grains">The Orleans client of a frontend, or the grain factory of a silo.</param>
    /// <param name="inSilo">Whether the store runs inside a silo.</param>
    /// <param name="options">The store's settings: near cache (null: on) and batching (null: in a frontend, while it is connected to one silo).</param>
    /// <param name="gateways">The frontend's connected silos, which the automatic choice follows per validation.</param>
    /// <param name="time">The clock the near cache checks expiry on.</param>
    /// <param name="meterFactory">For the near cache's instruments.</param>
    public static IValidationPath Choose(IGrainFactory grains, bool inSilo, SessionStoreOptions options, GatewayCount gateways, TimeProvider time, IMeterFactory meterFactory)
    {
        IValidationPath toGrains = options.BatchValidations switch
        {
            true => new ValidationBatcher(grains, static () => true),
            false => new DirectValidation(grains),
            null when inSilo => new DirectValidation(grains),
            null => new ValidationBatcher(grains, () => gateways.IsOne),
        };
        return options.NearCache.Enabled ?? true
            ? new SessionNearCache(grains, toGrains, options.NearCache, time, meterFactory)
            : toGrains;
    }
}
