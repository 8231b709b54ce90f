using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.DataProtection;
using Orleans.Hosting;
using SessionGrains;
using StackExchange.Redis;

namespace SessionGrains.WebFrontend;

/// <summary>
/// The demo frontend. With <c>SessionStore__Redis</c> (and <c>SessionStore__TokenKeys</c>) it is an Orleans client
/// of a silo cluster and shares its data-protection keys through Redis, so any instance reads any cookie. With
/// nothing configured it embeds a silo and runs alone: <c>dotnet run --project Samples/WebFrontend</c>.
/// </summary>
public static class WebFrontendProgram
{
    public static void Main(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        var store = builder.Configuration.GetSection("SessionStore");
        if (store["Redis"] is { Length: > 0 } redis)
        {
            builder.Services.AddSessionGrainsClient(o =>
            {
                o.Redis = redis;
                o.TokenKeys = store["TokenKeys"];
                o.ClusterId = store["ClusterId"] ?? o.ClusterId;
                o.ServiceId = store["ServiceId"] ?? o.ServiceId;
                o.RedisCaCertificate = store["RedisCaCertificate"];
            });
            var multiplexer = ConnectionMultiplexer.Connect(RedisConfiguration.Parse(redis, "SessionStore:Redis", store["RedisCaCertificate"]));
            builder.Services.AddDataProtection().SetApplicationName("SessionGrains.WebFrontend").PersistKeysToStackExchangeRedis(multiplexer, "sessiongrains-frontend/data-protection");
        }
        else
        {
            builder.UseOrleans(silo => silo
                .UseLocalhostClustering(store.GetValue("SiloPort", 11121), store.GetValue("GatewayPort", 30021))
                .AddSessionGrains(o => store.Bind(o)));
            builder.Services.AddSessionStore(o => o.TokenKeys = store["TokenKeys"]);
        }

        builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme)
            .AddCookie(cookie =>
            {
                cookie.LoginPath = "/SignIn";
                // Production: the "__Host-" name prefix and CookieSecurePolicy.Always (HTTPS only). The demo also runs on plain http://localhost.
                cookie.Cookie.Name = "sessiongrains";
                cookie.Cookie.HttpOnly = true;
                cookie.Cookie.SameSite = SameSiteMode.Lax;
                cookie.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                cookie.SlidingExpiration = true;
            });
        builder.Services.AddSessionGrainsTicketStore();
        builder.Services.AddSessionGrainsDistributedCache();
        builder.Services.AddSession(session =>
        {
            session.Cookie.Name = "sessiongrains-state";
            session.Cookie.HttpOnly = true;
            session.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
        });
        builder.Services.AddRazorPages(pages =>
        {
            pages.Conventions.AuthorizeFolder("/");
            pages.Conventions.AllowAnonymousToPage("/SignIn");
        });

        var app = builder.Build();
        app.UseStaticFiles();
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseSession();
        app.MapRazorPages();
        app.Run();
    }
}
