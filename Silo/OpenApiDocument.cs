using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace SessionGrains.Silo;

/// <summary>
/// The served OpenAPI description (<c>/openapi/v1.json</c>, open like the health endpoints): every route with its
/// answers, from the routes' own metadata, and the API key as the security scheme.
/// </summary>
internal static class OpenApiDocument
{
    public const string Path = "/openapi/v1.json";

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
        }));
}
