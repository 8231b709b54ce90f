using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>Meters and activities are process-wide, so these tests run alone: no other host adds to the counts.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TelemetryCollection
{
    public const string Name = "telemetry";
}

/// <summary>The silo's <c>/metrics</c> scrape after a small load, and the client's activities.</summary>
[Collection(TelemetryCollection.Name)]
public sealed partial class TelemetryTests
{
    private const string Key = "0123456789abcdef-metrics-key";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Metrics_are_scraped_behind_the_api_key_with_the_counts_of_a_small_load()
    {
        await using var factory = SiloApiFactory.Create(null, ("SessionStore:ApiKey", Key));
        using var http = factory.CreateClient();
        await HttpApiTests.AssertProblem(await http.GetAsync("/metrics", Ct), HttpStatusCode.Unauthorized);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health", Ct)).StatusCode);
        http.DefaultRequestHeaders.Add("X-Api-Key", Key);

        var tokens = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            using var create = await http.PostAsJsonAsync("/sessions", new { userId = "metrics-" + i }, Ct);
            Assert.Equal(HttpStatusCode.Created, create.StatusCode);
            tokens.Add(JsonDocument.Parse(await create.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("token").GetString()!);
        }

        for (var i = 0; i < 20; i++)
        {
            using var validate = new HttpRequestMessage(HttpMethod.Get, "/sessions/current");
            validate.Headers.Add("X-Session-Token", tokens[i % tokens.Count]);
            Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(validate, Ct)).StatusCode);
        }

        using var delete = new HttpRequestMessage(HttpMethod.Delete, "/sessions/current");
        delete.Headers.Add("X-Session-Token", tokens[0]);
        Assert.True((await http.SendAsync(delete, Ct)).IsSuccessStatusCode);

        // The exporter caches a scrape briefly; read until the load shows (or the budget runs out).
        string scrape = "";
        var deadline = DateTime.UtcNow.AddSeconds(15);
        do
        {
            using var response = await http.GetAsync("/metrics", Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            scrape = await response.Content.ReadAsStringAsync(Ct);
            if (Value(scrape, "sessiongrains_sessions_ended_total", "reason=\"Deleted\"") == 1)
            {
                break;
            }

            await Task.Delay(200, Ct);
        }
        while (DateTime.UtcNow < deadline);

        Assert.Equal(5, Value(scrape, "sessiongrains_sessions_created_total"));
        // The silo's own store answers from its near cache's memory what its grains no longer see.
        Assert.True(Value(scrape, "sessiongrains_validations_total") + Value(scrape, "sessiongrains_nearcache_hits_total") >= 20, scrape);
        Assert.True(Value(scrape, "sessiongrains_nearcache_hits_total") > 0, scrape);
        Assert.Equal(1, Value(scrape, "sessiongrains_sessions_ended_total", "reason=\"Deleted\""));
        Assert.True(Value(scrape, "sessiongrains_storage_operations_total", "operation=\"write\"") > 0, scrape);
        foreach (var token in tokens)
        {
            Assert.DoesNotContain(token, scrape, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_validation_records_an_activity_that_carries_no_token()
    {
        using var activities = new RecordedActivities();

        await using var factory = SiloApiFactory.Create();
        var store = factory.Services.GetRequiredService<ISessionStore>();
        var created = await store.CreateAsync("traced", cancellationToken: Ct);
        Assert.NotNull(await store.ValidateAsync(created.Token.Value, cancellationToken: Ct));

        var recorded = activities.Stopped();

        var validation = Assert.Single(recorded, a => a.OperationName == "SessionStore.Validate" && Equals(a.GetTagItem(SessionStoreActivities.SessionTag), SessionIds.ForLog(created.Session.SessionId)));
        Assert.Equal(ActivityKind.Client, validation.Kind);
        Assert.Contains(recorded, a => a.OperationName == "SessionStore.Create");
        foreach (var activity in recorded)
        {
            Assert.DoesNotContain(activity.TagObjects, tag => tag.Value?.ToString()?.Contains(created.Token.Value, StringComparison.Ordinal) == true);
            Assert.DoesNotContain(activity.TagObjects, tag => Equals(tag.Value, "traced")); // nor the user id
        }
    }

    [Fact]
    public async Task With_tracing_on_a_creates_trace_goes_on_into_the_grain_and_shows_its_storage_writes()
    {
        using var activities = new RecordedActivities();

        // OTLP configured (to a closed loopback port) is what turns Orleans' activity propagation on in the silo.
        await using var factory = SiloApiFactory.Create(extra: (Microsoft.AspNetCore.Builder.SiloTelemetry.OtlpEndpointSetting, "http://127.0.0.1:9"));
        var store = factory.Services.GetRequiredService<ISessionStore>();
        var created = await store.CreateAsync("traced-storage", cancellationToken: Ct);

        var recorded = activities.Stopped();

        // Other tests' activities reach this listener too: this create is the one whose trace holds storage writes.
        var create = Assert.Single(recorded, a => a.OperationName == "SessionStore.Create" && a.TraceId != default
            && recorded.Any(w => w.TraceId == a.TraceId && w.OperationName.StartsWith("write ", StringComparison.Ordinal)));
        var writes = recorded.Where(a => a.TraceId == create.TraceId && a.OperationName.StartsWith("write ", StringComparison.Ordinal)).ToList();
        Assert.Contains(writes, a => Equals(a.GetTagItem("sessiongrains.storage"), StorageNames.Sessions));
        Assert.All(writes, a =>
        {
            Assert.Equal(ActivityKind.Client, a.Kind);
            Assert.Equal("write", a.GetTagItem("db.operation.name"));
            Assert.DoesNotContain(a.TagObjects, tag => tag.Value?.ToString()?.Contains(created.Session.SessionId, StringComparison.Ordinal) == true);
        });
    }

    [Fact]
    public async Task A_failed_operation_marks_its_activity_failed_with_the_exception_type_only()
    {
        using var activities = new RecordedActivities();

        await using var factory = SiloApiFactory.Create();
        var store = factory.Services.GetRequiredService<ISessionStore>();
        var created = await store.CreateAsync("traced-failure", cancellationToken: Ct);
        var oversized = new SessionUpdate { Metadata = System.Collections.Immutable.ImmutableDictionary<string, string?>.Empty.Add("m", new string('m', 70 * 1024)) };
        var failure = await Assert.ThrowsAnyAsync<ArgumentException>(() => store.UpdateAsync(created.Token.Value, oversized, cancellationToken: Ct));

        var update = Assert.Single(activities.Stopped(), a => a.OperationName == "SessionStore.Update");

        Assert.Equal(ActivityStatusCode.Error, update.Status);
        Assert.Equal(failure.GetType().Name, update.StatusDescription);
    }

    /// <summary>The value of a series in Prometheus text, its labels containing <paramref name="label"/>; 0 when absent.</summary>
    private static double Value(string scrape, string series, string? label = null)
    {
        foreach (Match match in SeriesLine().Matches(scrape))
        {
            if (match.Groups["name"].Value == series && (label is null || match.Groups["labels"].Value.Contains(label, StringComparison.Ordinal)))
            {
                return double.Parse(match.Groups["value"].Value, System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>[^}]*)\})? (?<value>\S+)", RegexOptions.Multiline)]
    private static partial Regex SeriesLine();
}

/// <summary>Every activity of the <c>SessionGrains</c> source stopped in this process while it listens (other tests' too).</summary>
internal sealed class RecordedActivities : IDisposable
{
    private readonly List<Activity> _stopped = [];
    private readonly ActivityListener _listener;

    public RecordedActivities()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == SessionStoreActivities.SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity => { lock (_stopped) { _stopped.Add(activity); } },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public Activity[] Stopped()
    {
        lock (_stopped)
        {
            return [.. _stopped];
        }
    }

    public void Dispose() => _listener.Dispose();
}
