using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using SessionGrains.WebFrontend;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>The demo frontend in process: embedded silo when no Redis is given, otherwise a client of that cluster.</summary>
public sealed class FrontendFactory(IReadOnlyDictionary<string, string?> settings) : WebApplicationFactory<FrontendPageModel>
{
    public static FrontendFactory Embedded() => new(new Dictionary<string, string?>
    {
        ["SessionStore:SiloPort"] = RedisServer.FreePort().ToString(),
        ["SessionStore:GatewayPort"] = RedisServer.FreePort().ToString(),
    });

    public static FrontendFactory ClientOf(RedisServer redis, SiloApiFactory silo) => new(new Dictionary<string, string?>
    {
        ["SessionStore:Redis"] = redis.ConnectionString,
        ["SessionStore:TokenKeys"] = SiloApiFactory.TestTokenKeys,
        ["SessionStore:ServiceId"] = silo.ServiceId,
        ["SessionStore:ClusterId"] = silo.ClusterId,
    });

    /// <summary>With <see cref="WebApplicationFactory{T}.UseKestrel()"/>: where a browser can reach it.</summary>
    public Uri Address => new(Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

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
