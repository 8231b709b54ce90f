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
    /// cookie carries only a session token; revoking the session signs the browser out. Needs <c>AddSessionStore</c>
    /// or <c>AddSessionGrainsClient</c>.
    /// </summary>
    public static IServiceCollection AddSessionGrainsTicketStore(this IServiceCollection services, string scheme = CookieAuthenticationDefaults.AuthenticationScheme)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddHttpContextAccessor();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<SessionGrainsTicketStore>();
        services.AddOptions<CookieAuthenticationOptions>(scheme)
            .PostConfigure<SessionGrainsTicketStore>((cookie, store) => cookie.SessionStore = store);
        return services;
    }
}
