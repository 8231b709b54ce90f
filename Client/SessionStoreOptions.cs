using Microsoft.Extensions.Options;

namespace SessionGrains;

/// <summary>Settings of <see cref="ISessionStore"/> itself, wherever it runs (frontend, host app, silo HTTP API).</summary>
public sealed class SessionStoreOptions
{
    /// <summary>
    /// Keys that sign tokens: <c>id:secret</c> pairs, comma-separated, newest first (new tokens use the
    /// first; tokens under the others keep working until their key is removed). Every frontend and silo
    /// that checks tokens needs the same keys. A secret: never logged.
    /// </summary>
    public string? TokenKeys { get; set; }

    /// <summary>
    /// Refuse to start without <see cref="TokenKeys"/>. Set for production deployments (Redis configured);
    /// otherwise a key is generated for the process, and its tokens stop working when it restarts.
    /// </summary>
    public bool RequireTokenKeys { get; set; }

    /// <summary>
    /// Send concurrent validations to the cluster in batches, one message for many (README, "How it works").
    /// Null (the default): in a frontend while it is connected to a single silo, where it pays; never inside a
    /// silo, where calls to local grains are not messages. True: always; false: never.
    /// </summary>
    public bool? BatchValidations { get; set; }
}

internal sealed class SessionStoreOptionsValidator : IValidateOptions<SessionStoreOptions>
{
    public const string TokenKeysSetting = "SessionStore:TokenKeys";

    public ValidateOptionsResult Validate(string? name, SessionStoreOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.TokenKeys))
        {
            return options.RequireTokenKeys
                ? ValidateOptionsResult.Fail($"{TokenKeysSetting} is required when SessionStore:Redis is set: every silo and frontend needs the same keys (e.g. 'k1:' followed by the output of 'openssl rand -base64 32').")
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
}
