using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Scalar.AspNetCore;

namespace SessionGrains.Silo;

/// <summary>
/// The served OpenAPI description (<c>/openapi/v1.json</c>, open like the health endpoints): every route with its
/// answers, from the routes' own metadata, and the API key as the security scheme.
/// </summary>
internal static class OpenApiDocument
{
    public const string Path = "/openapi/v1.json";

    /// <summary>Where the API reference UI is served when <see cref="SiloHostOptions.ApiReference"/> is on.</summary>
    public const string ReferencePath = "/scalar";

    /// <summary>The routes open to callers without an API key: health probes, the description and its UI.</summary>
    public static bool IsOpen(PathString path) =>
        path.StartsWithSegments("/health") || path.StartsWithSegments("/openapi") || path.StartsWithSegments(ReferencePath);

    /// <summary>Serves the API reference (Scalar, from its own files: nothing is fetched from elsewhere) when the setting asks for it.</summary>
    public static WebApplication MapSessionGrainsApiReference(this WebApplication app, SiloHostOptions host)
    {
        if (host.ApiReference)
        {
            // Nothing leaves the private network: no web fonts, telemetry, AI agent or MCP link from the UI's makers.
            app.MapScalarApiReference(ReferencePath, options => options
                .WithTitle("SessionGrains HTTP API")
                .WithOpenApiRoutePattern(Path)
                .DisableDefaultFonts()
                .DisableTelemetry()
                .DisableAgent()
                .DisableMcp()
                .AddPreferredSecuritySchemes(ApiKeyMiddleware.Header));
        }

        return app;
    }

    public static IServiceCollection AddSessionGrainsOpenApi(this IServiceCollection services) =>
        services.AddOpenApi(options => options.AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "SessionGrains";
            document.Info.Description = "Sessions in an Orleans cluster. Errors are problem documents with a stable type (docs/http-api.md).";
            document.Components ??= new OpenApiComponents();
            document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
            document.Components.SecuritySchemes[ApiKeyMiddleware.Header] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.ApiKey,
                In = ParameterLocation.Header,
                Name = ApiKeyMiddleware.Header,
                Description = "SessionStore:ApiKey (every route), or SessionStore:FrontendApiKey (POST /sessions and /sessions/current).",
            };
            document.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiKeyMiddleware.Header, document)] = [] }];
            return Task.CompletedTask;
        }).AddOperationTransformer((operation, context, _) =>
        {
            // An empty requirement list overrides the document's: the health probes need no key.
            if (IsOpen("/" + context.Description.RelativePath))
            {
                operation.Security = [];
            }

            foreach (var header in context.Description.ActionDescriptor.EndpointMetadata.OfType<HeaderParameter>())
            {
                operation.Parameters ??= [];
                operation.Parameters.Add(new OpenApiParameter
                {
                    Name = header.Name,
                    In = ParameterLocation.Header,
                    Required = header.Required,
                    Description = header.Description,
                    Schema = new OpenApiSchema { Type = JsonSchemaType.String },
                });
            }

            return Task.CompletedTask;
        }));
}
