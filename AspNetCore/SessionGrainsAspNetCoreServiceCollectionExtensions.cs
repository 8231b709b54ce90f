using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.DependencyInjection.Extensions;
using SessionGrains;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the ASP.NET Core adapters of SessionGrains over an <see cref="ISessionStore"/> already registered.</summary>
public static class SessionGrainsAspNetCoreServiceCollectionExtensions
{
    /// <summary>
    /// Keeps ASP.NET Core's <see cref="IDistributedCache"/> (and with it <c>AddSession</c> state) in the session
    /// cluster. Needs <c>AddSessionStore</c> or <c>AddSessionGrainsClient</c>.
    /// </summary>
    public static IServiceCollection AddSessionGrainsDistributedCache(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<IDistributedCache, SessionGrainsDistributedCache>();
        return services;
    }

    /// <summary>
    /// Makes cookie authentication (scheme <paramref name="scheme"/>) keep its tickets in session grains: the
    /// cookie carries only a session token; revoking the session signs the browser out. Every sign-in gets a new
    /// session, also over a cookie of a live one (which ends). Tickets are protected with Data Protection, whose key
    /// ring every frontend instance must share. Needs <c>AddSessionStore</c> or <c>AddSessionGrainsClient</c>.
    /// </summary>
    public static IServiceCollection AddSessionGrainsTicketStore(this IServiceCollection services, string scheme = CookieAuthenticationDefaults.AuthenticationScheme) =>
        services.AddSessionGrainsTicketStore(_ => { }, scheme);

    /// <summary>
    /// As <see cref="AddSessionGrainsTicketStore(IServiceCollection, string)"/>, with the ticket store's options:
    /// for example the absolute lifetime of sessions behind sliding cookies.
    /// </summary>
    public static IServiceCollection AddSessionGrainsTicketStore(this IServiceCollection services, Action<SessionGrainsTicketStoreOptions> configure, string scheme = CookieAuthenticationDefaults.AuthenticationScheme)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<SessionGrainsTicketStoreOptions>().Configure(configure)
            .Validate(o => o.AbsoluteTimeout is null || o.AbsoluteTimeout > TimeSpan.Zero, "SessionGrainsTicketStoreOptions.AbsoluteTimeout must be positive (or null for the cluster's default).")
            .ValidateOnStart();
        services.AddHttpContextAccessor();
        services.TryAddSingleton(TimeProvider.System);
        services.AddDataProtection();
        services.TryAddSingleton<SessionGrainsTicketStore>();
        services.AddOptions<CookieAuthenticationOptions>(scheme)
            .PostConfigure<SessionGrainsTicketStore>((cookie, store) =>
            {
                cookie.SessionStore = store;
                // The framework's default manager when none is set yet, so the order of AddCookie and this call does not matter.
                cookie.CookieManager = new ReissuedKeyCookieManager(cookie.CookieManager ?? new ChunkingCookieManager(), cookie);
                store.ReissuesCookieKeys = true;
                store.Uses(scheme, cookie);
            });
        return services;
    }
}
