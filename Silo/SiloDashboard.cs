using System.Net;
using Orleans.Dashboard;
using SessionGrains.Silo;

namespace Microsoft.AspNetCore.Builder;

/// <summary>
/// The Orleans dashboard on the silo's HTTP port under <see cref="Path"/>, when <c>SessionStore:Dashboard=true</c>.
/// It sits behind <see cref="ApiKeyMiddleware"/> like every route (the admin key, sent by a header-injecting proxy);
/// with no key configured it is served to loopback callers only, so turning it on never opens it to the network.
/// </summary>
public static class SiloDashboard
{
    /// <summary>Where the dashboard is served.</summary>
    public const string Path = "/dashboard";

    /// <summary>Adds the dashboard's grains and collectors to the silo when the setting asks for it.</summary>
    public static ISiloBuilder AddSessionGrainsDashboard(this ISiloBuilder silo, SiloHostOptions host)
    {
        // The live log stream is hidden: logs are for the log pipeline, not for a browser tab.
        return host.Dashboard ? silo.AddDashboard(options => options.HideTrace = true) : silo;
    }

    /// <summary>Maps the dashboard when the setting asks for it; without an API key, only for loopback callers.</summary>
    public static WebApplication MapSessionGrainsDashboard(this WebApplication app, SiloHostOptions host)
    {
        if (!host.Dashboard)
        {
            return app;
        }

        if (!host.RequiresApiKey)
        {
            // A middleware, not an endpoint filter, so it covers the dashboard's static files as well as its API.
            app.Use((http, next) => !http.Request.Path.StartsWithSegments(Path) || IsLoopback(http.Connection.RemoteIpAddress)
                ? next(http)
                : Results.NotFound().ExecuteAsync(http));
        }

        app.MapOrleansDashboard(routePrefix: Path);
        return app;
    }

    /// <summary>Whether a caller is this host itself (a test server's in-memory caller has no address and counts as local).</summary>
    internal static bool IsLoopback(IPAddress? caller) => caller is null || IPAddress.IsLoopback(caller);
}
