using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace SessionGrains;

/// <summary>How every SessionGrains options class is registered: bound once, validated once at start-up.</summary>
internal static class OptionsRegistration
{
    /// <summary>
    /// Registers <typeparamref name="TOptions"/> bound from <paramref name="section"/> and then configured by
    /// <paramref name="configure"/> (either may be null), validated by <typeparamref name="TValidator"/> when the
    /// host starts. Calling it again adds configuration, never a second validator.
    /// </summary>
    public static void AddValidatedOptions<TOptions, TValidator>(this IServiceCollection services, IConfiguration? section, Action<TOptions>? configure)
        where TOptions : class
        where TValidator : class, IValidateOptions<TOptions>
    {
        var options = services.AddOptions<TOptions>();
        if (section is not null)
        {
            options.Bind(section);
        }

        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TOptions>, TValidator>());
    }

    /// <summary>
    /// What <c>IOptions&lt;TOptions&gt;</c> will hold, from the configuration registered so far (bindings and
    /// delegates), for the choices a registration must make before the container exists (Redis or memory
    /// storage, clustering, ports). Not validated: a value read here must not throw when it is wrong, start-up reports it.
    /// </summary>
    public static TOptions Registered<TOptions>(this IServiceCollection services)
        where TOptions : class, new()
    {
        var options = new TOptions();
        foreach (var service in services.Where(s => !s.IsKeyedService).ToList())
        {
            if (service.ServiceType == typeof(IConfigureOptions<TOptions>) && service.ImplementationInstance is IConfigureOptions<TOptions> configure)
            {
                if (configure is IConfigureNamedOptions<TOptions> named)
                {
                    named.Configure(Options.DefaultName, options);
                }
                else
                {
                    configure.Configure(options);
                }
            }
        }

        foreach (var service in services.Where(s => !s.IsKeyedService).ToList())
        {
            if (service.ServiceType == typeof(IPostConfigureOptions<TOptions>) && service.ImplementationInstance is IPostConfigureOptions<TOptions> postConfigure)
            {
                postConfigure.PostConfigure(Options.DefaultName, options);
            }
        }

        return options;
    }
}
