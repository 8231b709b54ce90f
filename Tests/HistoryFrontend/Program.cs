using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Diagnostics;
using SessionGrains;
using SessionGrains.HistoryFrontend;

// A frontend as a process of its own, so that a test can kill or pause it (SIGSTOP) like a real one.
// Every route maps onto one ISessionStore call; configuration is the SessionStore section (environment:
// SessionStore__Redis, SessionStore__TokenKeys, SessionStore__NearCache__Enabled, ...).
var builder = WebApplication.CreateSlimBuilder(args);
builder.Services.AddSessionGrainsClient(builder.Configuration.GetSection(SessionClusterOptions.SectionName));
var app = builder.Build();

// A failed store call is an answer the history records as indeterminate: its type only, nothing that could carry input.
app.Use(async (context, next) =>
{
    try
    {
        await next(context);
    }
    catch (Exception exception) when (!context.Response.HasStarted)
    {
        context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        await context.Response.WriteAsync(exception.GetType().Name);
    }
});

app.MapGet("/health", () => Results.Ok());

// What the near cache did, from its own instruments: a run with the cache on must show it answered.
var nearCache = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
var listener = new System.Diagnostics.Metrics.MeterListener
{
    InstrumentPublished = (instrument, l) =>
    {
        if (instrument.Meter.Name == "SessionGrains" && instrument.Name.StartsWith("sessiongrains.nearcache.", StringComparison.Ordinal))
        {
            l.EnableMeasurementEvents(instrument);
        }
    },
};
listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => nearCache.AddOrUpdate(instrument.Name["sessiongrains.nearcache.".Length..], value, (_, total) => total + value));
listener.Start();
app.MapGet("/near-cache", () => new NearCacheCounts(nearCache.GetValueOrDefault("hits"), nearCache.GetValueOrDefault("misses"), nearCache.GetValueOrDefault("recalls")));

// A deliberately wrong cache for the test that proves the history checker catches one: answers kept for a fixed
// time and never invalidated (what a TTL cache in front of a session store does). Off unless the test sets it.
var unsafeCacheTtl = builder.Configuration.GetValue<TimeSpan?>("HistoryFrontend:UnsafeCacheTtl");
var unsafeCache = new ConcurrentDictionary<string, (SessionAnswer Answer, long Until)>(StringComparer.Ordinal);

app.MapPost("/validate", async (TokenRequest request, ISessionStore store, CancellationToken ct) =>
{
    if (unsafeCacheTtl is not null && unsafeCache.TryGetValue(request.Token, out var kept) && Stopwatch.GetTimestamp() < kept.Until)
    {
        return kept.Answer;
    }

    var answer = await store.ValidateAsync(request.Token, cancellationToken: ct) is { } session
        ? new SessionAnswer(true, session.Version, session.SessionId)
        : new SessionAnswer(false);
    if (unsafeCacheTtl is { } ttl && answer.Found)
    {
        unsafeCache[request.Token] = (answer, Stopwatch.GetTimestamp() + (long)(ttl.TotalSeconds * Stopwatch.Frequency));
    }

    return answer;
});

app.MapPost("/update", async (UpdateRequest request, ISessionStore store, CancellationToken ct) =>
{
    var change = new SessionUpdate { Metadata = ImmutableDictionary<string, string?>.Empty.Add("n", request.Value) };
    try
    {
        return await store.UpdateAsync(request.Token, change, request.ExpectedVersion, ct) is { } session
            ? new SessionAnswer(true, session.Version, session.SessionId)
            : new SessionAnswer(false);
    }
    catch (SessionVersionConflictException conflict)
    {
        return new SessionAnswer(true, conflict.ActualVersion, Conflict: true);
    }
});

app.MapPost("/rotate", async (TokenRequest request, ISessionStore store, CancellationToken ct) =>
    await store.RotateAsync(request.Token, TimeSpan.Zero, ct) is { } rotated
        ? new CreatedAnswer(true, rotated.Token.Value, rotated.Session.SessionId, rotated.Session.Version, rotated.Session.CreatedAt)
        : new CreatedAnswer(false));

app.MapPost("/delete", async (TokenRequest request, ISessionStore store, CancellationToken ct) =>
    new CountAnswer(await store.DeleteAsync(request.Token, ct)));

app.MapPost("/revoke", async (UserRequest request, ISessionStore store, CancellationToken ct) =>
    new CountAnswer(await store.RevokeAsync(request.UserId, request.SessionId, ct)));

app.MapPost("/delete-all", async (UserRequest request, ISessionStore store, CancellationToken ct) =>
    new CountAnswer(true, await store.DeleteAllForUserAsync(request.UserId, request.SessionId, ct)));

app.MapPost("/create", async (UserRequest request, ISessionStore store, CancellationToken ct) =>
{
    var created = await store.CreateAsync(request.UserId, cancellationToken: ct);
    return new CreatedAnswer(true, created.Token.Value, created.Session.SessionId, created.Session.Version, created.Session.CreatedAt);
});

app.MapPost("/count", async (UserRequest request, ISessionStore store, CancellationToken ct) =>
    new CountAnswer(false, await store.CountForUserAsync(request.UserId, ct)));

app.MapPost("/list", async (UserRequest request, ISessionStore store, CancellationToken ct) =>
    new ListAnswer((await store.ListByUserAsync(request.UserId, 1000, cancellationToken: ct)).Sessions.Select(s => s.SessionId).ToList()));

await app.RunAsync();
