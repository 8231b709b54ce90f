using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using SessionGrains.Silo;

// The standalone silo: `dotnet run --project Silo` with no configuration runs the embedded default
// (localhost clustering, in-memory storage); SessionStore__Redis or SessionStore__Postgres switches everything to
// that store. `dotnet run --project Silo -- migrate` creates or upgrades the PostgreSQL schema and exits.
if (args is [MigrateCommand.Verb, ..])
{
    return await MigrateCommand.RunAsync(args);
}

var builder = WebApplication.CreateBuilder(args);
builder.AddSessionGrainsSilo();
builder.AddSessionGrainsTelemetry();
builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = ProblemTypes.Customize);
builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.Converters.Add(new MillisecondTimestampConverter()));
builder.Services.AddExceptionHandler<ProblemExceptionHandler>();
builder.Services.AddValidation(); // request bodies: a 400 naming each bad field
builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true); // bad JSON reaches the problem handler
builder.Services.AddSiloHealthChecks();
builder.Services.AddSessionGrainsOpenApi();

var app = builder.Build();
var host = app.Services.GetRequiredService<IOptions<SiloHostOptions>>().Value;
app.UseExceptionHandler();
app.UseStatusCodePages();
app.UseRequestSizeLimit(host.MaxRequestBodyBytes);
app.UseApiKey(host);
app.MapSiloHealth();
app.MapOpenApi(OpenApiDocument.Path);
app.MapSessionGrainsApiReference(host);
app.MapSessionGrainsMetrics();
app.MapSessionApi();
app.MapSessionGrainsDashboard(host);
await app.RunAsync();
return 0;

/// <summary>The silo's entry point (public for the tests' WebApplicationFactory).</summary>
public partial class Program;
