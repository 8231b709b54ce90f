using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace SessionGrains;

/// <summary>Reads the StackExchange.Redis configuration strings that silos and frontends share.</summary>
public static class RedisConfiguration
{
    /// <summary>The setting that holds the Redis configuration string.</summary>
    public const string RedisSetting = SessionClusterOptions.SectionName + ":" + nameof(SessionClusterOptions.Redis);

    /// <summary>The setting that names a CA certificate file for Redis TLS.</summary>
    public const string CaSetting = SessionClusterOptions.SectionName + ":" + nameof(SessionClusterOptions.RedisCaCertificate);

    private const int DefaultTimeoutMilliseconds = 2000;

    /// <summary>
    /// Parses a configuration string (<c>host:port,password=...,ssl=true</c>, a Sentinel
    /// <c>serviceName=...</c>, or several cluster endpoints). Fails with an
    /// <see cref="OptionsValidationException"/> that names <paramref name="settingName"/> but never repeats
    /// the string, which may hold a password.
    /// </summary>
    /// <param name="configuration">The configuration string.</param>
    /// <param name="settingName">The setting it came from, for error messages.</param>
    /// <param name="trustedCaPath">
    /// A PEM file with the CA that signed the Redis server's TLS certificate, when it is not one the
    /// operating system trusts (setting <c>SessionStore:RedisCaCertificate</c>).
    /// </param>
    public static ConfigurationOptions Parse(string configuration, string settingName, string? trustedCaPath = null)
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

        if (!string.IsNullOrWhiteSpace(trustedCaPath))
        {
            if (!File.Exists(trustedCaPath))
            {
                throw new OptionsValidationException(CaSetting, typeof(ConfigurationOptions),
                    [$"{CaSetting}: the file '{trustedCaPath}' does not exist."]);
            }

            options.TrustIssuer(trustedCaPath);
        }

        // Keep reconnecting in the background instead of failing start-up when Redis is slow to come up, and
        // while disconnected fail commands at once instead of queueing them: callers get a fast 503, not a hang.
        options.AbortOnConnectFail = false;
        options.BacklogPolicy = BacklogPolicy.FailFast;

        // Complete Redis I/O on the .NET thread pool instead of StackExchange.Redis' dedicated socket threads.
        // Profiled under a create load on 2 cores, those threads (spinning and signalling each other) took about
        // 40% of the silo's CPU; on the thread pool, co-hosted creates ran about 45% faster (6.4-6.9k/s against
        // 4.3-4.7k/s). Everything here is async, which is what the thread pool is for.
        options.SocketManager = SocketManager.ThreadPool;

        // Reconnect every second while Redis is away (not with a growing back-off), so service resumes within
        // about a second of its return.
        options.ReconnectRetryPolicy = new LinearRetry(1000);

        // A Redis that does not answer (a partition, a frozen host) fails a command after 2 s instead of
        // StackExchange.Redis' 5 s, well inside a client's wait for its silo; the string may say otherwise.
        if (!configuration.Contains("syncTimeout", StringComparison.OrdinalIgnoreCase))
        {
            options.SyncTimeout = DefaultTimeoutMilliseconds;
        }

        if (!configuration.Contains("asyncTimeout", StringComparison.OrdinalIgnoreCase))
        {
            options.AsyncTimeout = DefaultTimeoutMilliseconds;
        }

        return options;
    }
}
