namespace SessionGrains;

/// <summary>
/// How a <see cref="SessionStore"/> takes a validation to its session grain. Chosen once, when the store is
/// registered (<see cref="ValidationPaths.Choose"/>), so the path a reader follows is the one that runs.
/// </summary>
internal interface IValidationPath
{
    Task<SessionInfo?> ValidateAsync(string sessionId, ClientInfo? client);
}

/// <summary>
/// Each validation straight to its session grain: inside a silo (a call to a local grain is no network message,
/// so there is nothing to batch) and in a frontend that does not batch.
/// </summary>
internal sealed class DirectValidation(IGrainFactory grains) : IValidationPath
{
    public Task<SessionInfo?> ValidateAsync(string sessionId, ClientInfo? client) => grains.Session(sessionId).ValidateAsync(client);
}

/// <summary>The choice of <see cref="IValidationPath"/>, as <see cref="SessionStoreOptions.BatchValidations"/> describes it.</summary>
internal static class ValidationPaths
{
    /// <param name="grains">The Orleans client of a frontend, or the grain factory of a silo.</param>
    /// <param name="inSilo">Whether the store runs inside a silo.</param>
    /// <param name="batchValidations">True: always batch; false: never; null: in a frontend, while it is connected to one silo.</param>
    /// <param name="gateways">The frontend's connected silos, which the automatic choice follows per validation.</param>
    public static IValidationPath Choose(IGrainFactory grains, bool inSilo, bool? batchValidations, GatewayCount gateways) => batchValidations switch
    {
        true => new ValidationBatcher(grains, static () => true),
        false => new DirectValidation(grains),
        null when inSilo => new DirectValidation(grains),
        null => new ValidationBatcher(grains, () => gateways.IsOne),
    };
}
