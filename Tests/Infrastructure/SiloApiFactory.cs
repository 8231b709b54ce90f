using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>
/// The real silo host (<c>Silo/Program.cs</c>) in process, configured only through its settings, as an
/// operator would: the embedded default when no Redis is given, Redis clustering + storage + reminders otherwise.
/// </summary>
public sealed class SiloApiFactory(IReadOnlyDictionary<string, string?> settings) : WebApplicationFactory<Program>
{
    public string ServiceId => settings["SessionStore:ServiceId"]!;

    public string ClusterId => settings["SessionStore:ClusterId"]!;

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
    }
}
