using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace SessionGrains.Silo;

/// <summary>
/// Runs before the silo starts: connects to Redis once and turns what would be a wall of Orleans retries
/// into one clear line. Wrong credentials (password, ACL user) or a TLS mismatch stop start-up at once;
/// an unreachable Redis, or one still reading its data back (LOADING), is retried for <see cref="Patience"/>
/// before giving up: after a restart a large append-only file takes a while to load.
/// </summary>
internal sealed partial class RedisStartupCheck(IOptions<SessionClusterOptions> cluster, ILogger<RedisStartupCheck> logger) : IHostedService
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var probe = cluster.Value.ParseRedis() ?? throw new InvalidOperationException($"{RedisConfiguration.RedisSetting} is not set.");
        probe.AbortOnConnectFail = true;
        probe.ConnectRetry = 1;
        probe.ConnectTimeout = 5000;
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            try
            {
                await using var connection = await ConnectionMultiplexer.ConnectAsync(probe).ConfigureAwait(false);
                await connection.GetDatabase().PingAsync().ConfigureAwait(false);
                return;
            }
            catch (RedisException exception) when (IsStillStarting(exception) && DateTime.UtcNow < deadline)
            {
                Log.Waiting(logger, exception is RedisConnectionException connection ? connection.FailureType.ToString() : "loading its data");
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            }
            catch (RedisException exception)
            {
                // The exception's own message can quote the configuration; this one names only the setting.
                throw new InvalidOperationException(
                    $"SessionStore:Redis: cannot use Redis ({Describe(exception)}). Check the address, the password or ACL user, and the TLS settings (ssl=true, sslHost, SessionStore:RedisCaCertificate).");
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Whether Redis may still be coming up (unreachable, or loading its data), not refusing us for good.</summary>
    /// <remarks>
    /// StackExchange.Redis reports a TLS handshake that timed out or broke off (an <see cref="IOException"/>; seen on a
    /// loaded machine) as an authentication failure too; only a refusal (a wrong password, an untrusted certificate)
    /// is final.
    /// </remarks>
    internal static bool IsStillStarting(RedisException exception) => exception switch
    {
        RedisConnectionException connection => connection.FailureType is not ConnectionFailureType.AuthenticationFailure
            || connection.InnerException is IOException,
        RedisServerException server => server.Message.StartsWith("LOADING", StringComparison.Ordinal),
        _ => false,
    };

    private static string Describe(RedisException exception) => exception switch
    {
        RedisConnectionException { FailureType: ConnectionFailureType.AuthenticationFailure } => "authentication failed: wrong password or ACL user",
        RedisConnectionException connection => $"connection failed: {connection.FailureType}",
        RedisServerException server when server.Message.StartsWith("NOPERM", StringComparison.Ordinal) => "the ACL user lacks a permission: " + server.Message.Split('\n')[0],
        _ => exception.GetType().Name,
    };

    private static partial class Log
    {
        [LoggerMessage(5001, LogLevel.Warning, "Redis is not ready yet ({Reason}); retrying.")]
        public static partial void Waiting(ILogger logger, string reason);
    }
}
