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
        var store = builder.Configuration.GetSection(SessionClusterOptions.SectionName);
        var cluster = store.Get<SessionClusterOptions>() ?? new SessionClusterOptions();
        if (cluster.Redis is not null)
        {
            builder.Services.AddSessionGrainsClient(store);

            // Connected on first use, after start-up validation has checked the string.
            var redis = new Lazy<ConnectionMultiplexer>(() => ConnectionMultiplexer.Connect(RedisConfiguration.Parse(cluster.Redis, RedisConfiguration.RedisSetting, cluster.RedisCaCertificate)));
            builder.Services.AddDataProtection().SetApplicationName("SessionGrains.WebFrontend").PersistKeysToStackExchangeRedis(() => redis.Value.GetDatabase(), "sessiongrains-frontend/data-protection");
        }
        else
        {
            // Its own ports, so the demo runs beside a standalone silo on its defaults.
            builder.UseOrleans(silo => silo
                .UseLocalhostClustering(store.GetValue("SiloPort", 11121), store.GetValue("GatewayPort", 30021))
                .AddSessionGrains(store));
            builder.Services.AddSessionStore(store);
        }

        builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme)
            .AddCookie(cookie =>
            {
                cookie.LoginPath = "/SignIn";
                // "__Host-sessiongrains" and Secure over HTTPS, "sessiongrains" over plain http://localhost (see FrontendCookies).
                cookie.Cookie.Name = FrontendCookies.Authentication;
                cookie.CookieManager = new HostPrefixCookieManager(new ChunkingCookieManager());
                cookie.Cookie.Path = "/";
                cookie.Cookie.HttpOnly = true;
                cookie.Cookie.SameSite = SameSiteMode.Lax;
                cookie.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                cookie.SlidingExpiration = true;

                // The event stream is read by a script: signed out, it gets a 401 rather than the sign-in page.
                cookie.Events.OnRedirectToLogin = context =>
                {
                    if (context.Request.Path.StartsWithSegments(DeviceEvents.Path))
                    {
                        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                    }
                    else
                    {
                        context.Response.Redirect(context.RedirectUri);
                    }

                    return Task.CompletedTask;
                };
            });
        builder.Services.AddSessionGrainsTicketStore();
        builder.Services.AddSessionGrainsDistributedCache();
        builder.Services.AddSession();
        builder.Services.AddRazorPages(pages =>
        {
            pages.Conventions.AuthorizeFolder("/");
            pages.Conventions.AllowAnonymousToPage("/SignIn");
        });

        var app = builder.Build();
        app.UseStaticFiles();
        app.UseAuthentication();
        app.UseAuthorization();
        // One cookie name per scheme, as for the authentication cookie: "__Host-" and Secure over HTTPS.
        app.UseWhen(context => context.Request.IsHttps, https => https.UseSession(FrontendCookies.StateOptions(https: true)));
        app.UseWhen(context => !context.Request.IsHttps, http => http.UseSession(FrontendCookies.StateOptions(https: false)));
        app.MapRazorPages();
        app.MapGet(DeviceEvents.Path, DeviceEvents.StreamAsync).RequireAuthorization();
        app.Run();
    }
}
