using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Logging;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>
/// The real silo host (<c>Silo/Program.cs</c>) in process, configured only through its settings, as an
/// operator would: the embedded default when no Redis is given, Redis clustering + storage + reminders otherwise.
/// </summary>
public sealed class SiloApiFactory(IReadOnlyDictionary<string, string?> settings) : WebApplicationFactory<Program>
{
    /// <summary>A key configuration for tests: <c>test1:</c> and 32 random bytes.</summary>
    public static string TestTokenKeys { get; } = "test1:" + Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    public string ServiceId => settings["SessionStore:ServiceId"]!;

    public string ClusterId => settings["SessionStore:ClusterId"]!;

    /// <summary>The silo-to-silo port, the one its membership row names.</summary>
    public int SiloPort => int.Parse(settings["SessionStore:SiloPort"]!, System.Globalization.CultureInfo.InvariantCulture);

    public static SiloApiFactory Create(RedisServer? redis = null, params (string Key, string? Value)[] extra)
    {
        var settings = new Dictionary<string, string?>
        {
            ["SessionStore:SiloPort"] = RedisServer.FreePort().ToString(),
            ["SessionStore:GatewayPort"] = RedisServer.FreePort().ToString(),
            ["SessionStore:ClusterId"] = "api-" + Guid.NewGuid().ToString("N")[..8],
            ["SessionStore:ServiceId"] = "api-" + Guid.NewGuid().ToString("N")[..8],
        };
        if (redis is not null)
        {
            settings["SessionStore:Redis"] = redis.ConnectionString;
            settings["SessionStore:AdvertisedAddress"] = "127.0.0.1";
            settings["SessionStore:TokenKeys"] = TestTokenKeys;
            settings["SessionStore:AllowOpenApi"] = "true"; // tests of the store, not of the API key
        }

        foreach (var (key, value) in extra)
        {
            settings[key] = value;
        }

        return new SiloApiFactory(settings);
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        foreach (var (key, value) in settings)
        {
            builder.UseSetting(key, value);
        }

        builder.UseEnvironment("Production");
        builder.ConfigureLogging(logging => logging.AddTokenLogWatch());
    }
}
