using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace SessionGrains;

/// <summary>Reads the StackExchange.Redis configuration strings that silos and frontends share.</summary>
public static class RedisConfiguration
{
    /// <summary>
    /// Parses a configuration string (<c>host:port,password=...,ssl=true</c>, a Sentinel
    /// <c>serviceName=...</c>, or several cluster endpoints). Fails with an
    /// <see cref="OptionsValidationException"/> that names <paramref name="settingName"/> but never repeats
    /// the string, which may hold a password.
    /// </summary>
    public static ConfigurationOptions Parse(string configuration, string settingName)
    {
        ConfigurationOptions? options = null;
        try
        {
            options = ConfigurationOptions.Parse(configuration);
        }
        catch (Exception exception) when (exception is ArgumentException or FormatException)
        {
            // Reported below without the exception message, which can quote the string.
        }

        if (options is null || (options.EndPoints.Count == 0 && options.ServiceName is null))
        {
            throw new OptionsValidationException(settingName, typeof(ConfigurationOptions),
                [$"{settingName} is not a valid StackExchange.Redis configuration string (expected e.g. \"127.0.0.1:6379,password=...\")."]);
        }

        // Keep retrying in the background instead of failing start-up when Redis is slow to come up.
        options.AbortOnConnectFail = false;
        return options;
    }
}
