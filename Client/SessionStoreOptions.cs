using Microsoft.Extensions.Options;

namespace SessionGrains;

/// <summary>
/// Settings of <see cref="ISessionStore"/> itself, wherever it runs (frontend, host app, silo HTTP API).
/// Bound from the <c>SessionStore</c> configuration section.
/// </summary>
public sealed class SessionStoreOptions
{
    /// <summary>
    /// Keys that sign tokens: <c>id:secret</c> pairs, comma-separated, newest first (new tokens use the
    /// first; tokens under the others keep working until their key is removed). Every frontend and silo
    /// that checks tokens needs the same keys. Required with a shared store (<see cref="SessionClusterOptions.Redis"/> or
    /// <see cref="SessionClusterOptions.Postgres"/>); without one, unset means a key generated for the process, whose tokens stop working when it restarts.
    /// A secret: never logged.
    /// </summary>
    public string? TokenKeys { get; set; }

    /// <summary>
    /// Send concurrent validations to the cluster in batches, one message for many (README, "How it works").
    /// Null (the default): in a frontend while it is connected to a single silo, where it pays; never inside a
    /// silo, where calls to local grains are not messages. True: always; false: never.
    /// </summary>
    public bool? BatchValidations { get; set; }

    /// <summary>Validations answered from memory under leases (<c>SessionStore:NearCache:*</c>); on in frontends by default.</summary>
    public NearCacheOptions NearCache { get; set; } = new();
}

/// <summary>Fails start-up with a message that names the setting and never repeats a key.</summary>
internal sealed class SessionStoreOptionsValidator(IOptions<SessionClusterOptions> cluster) : IValidateOptions<SessionStoreOptions>
{
    public const string TokenKeysSetting = SessionClusterOptions.SectionName + ":" + nameof(SessionStoreOptions.TokenKeys);

    public ValidateOptionsResult Validate(string? name, SessionStoreOptions options)
    {
        if (options.NearCache.Validate($"{SessionClusterOptions.SectionName}:{nameof(SessionStoreOptions.NearCache)}").ToList() is { Count: > 0 } failures)
        {
            return ValidateOptionsResult.Fail(failures);
        }

        if (string.IsNullOrWhiteSpace(options.TokenKeys))
        {
            return SharedStoreSetting() is { } store
                ? ValidateOptionsResult.Fail($"{TokenKeysSetting} is required when {store} is set: every silo and frontend needs the same keys (e.g. 'k1:' followed by the output of 'openssl rand -base64 32').")
                : ValidateOptionsResult.Success;
        }

        try
        {
            SessionTokenCodec.ParseKeys(options.TokenKeys, TokenKeysSetting);
            return ValidateOptionsResult.Success;
        }
        catch (OptionsValidationException exception)
        {
            return ValidateOptionsResult.Fail(exception.Failures);
        }
    }

    private string? SharedStoreSetting()
    {
        try
        {
            return cluster.Value.HasSharedStore ? cluster.Value.SharedStoreSetting : null;
        }
        catch (OptionsValidationException)
        {
            // The cluster settings' own validation reports what is wrong with them; the keys are judged with them.
            return null;
        }
    }
}
