using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using SessionGrains;

namespace Microsoft.AspNetCore.Builder;

/// <summary>
/// The silo's metrics and traces through OpenTelemetry: the <c>SessionGrains</c> meter and activity source and
/// Orleans' own, scraped by Prometheus at <c>/metrics</c> (behind the admin API key when one is set) and, when
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set, pushed over OTLP (the exporter reads the standard <c>OTEL_*</c> variables).
/// </summary>
public static class SiloTelemetry
{
    /// <summary>The standard OpenTelemetry variable that turns OTLP export on.</summary>
    public const string OtlpEndpointSetting = "OTEL_EXPORTER_OTLP_ENDPOINT";

    // Orleans' meter and its activity sources (the latter fed only with activity propagation on).
    private const string OrleansMeter = "Microsoft.Orleans";
    private static readonly string[] OrleansSources = ["Microsoft.Orleans.Runtime", "Microsoft.Orleans.Application"];

    /// <summary>Registers metrics (Prometheus, OTLP when configured) and tracing (OTLP when configured).</summary>
    public static WebApplicationBuilder AddSessionGrainsTelemetry(this WebApplicationBuilder builder)
    {
        var otlp = ExportsOtlp(builder.Configuration);
        var telemetry = builder.Services.AddOpenTelemetry();
        telemetry.WithMetrics(metrics =>
        {
            metrics.AddMeter(SessionGrainsMetrics.MeterName, OrleansMeter);
            metrics.AddPrometheusExporter();
            if (otlp)
            {
                metrics.AddOtlpExporter();
            }
        });

        // Traces go nowhere but OTLP, so without it no listener is registered and activities cost nothing.
        if (otlp)
        {
            telemetry.WithTracing(tracing => tracing
                .AddSource(SessionGrainsMetrics.MeterName)
                .AddSource(OrleansSources)
                .AddOtlpExporter());
        }

        return builder;
    }

    /// <summary>Maps the Prometheus scrape endpoint, <c>/metrics</c>.</summary>
    public static WebApplication MapSessionGrainsMetrics(this WebApplication app)
    {
        app.MapPrometheusScrapingEndpoint();
        return app;
    }

    /// <summary>Whether OTLP export is configured (the standard variable, through configuration).</summary>
    internal static bool ExportsOtlp(IConfiguration configuration) =>
        !string.IsNullOrWhiteSpace(configuration[OtlpEndpointSetting]);
}
