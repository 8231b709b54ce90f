using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using SessionGrains.Tests.Infrastructure;

namespace SessionGrains.Tests;

/// <summary>A silo's start logs no false deadlock warning of Orleans' watchdog, and its real warnings still reach the log.</summary>
public sealed class WatchdogStartFilterTests
{
    [Fact]
    public void The_watchdog_s_warnings_of_its_first_seconds_are_dropped_and_its_errors_and_later_warnings_kept()
    {
        var time = new FakeTimeProvider();
        var filter = new WatchdogStartFilter(time);
        Assert.True(filter.Allows(LogLevel.Warning), "a warning before the watchdog starts was dropped");

        filter.Arm();
        Assert.False(filter.Allows(LogLevel.Warning));
        Assert.True(filter.Allows(LogLevel.Error));
        time.Advance(WatchdogStartFilter.QuietAfterStart - TimeSpan.FromMilliseconds(1));
        Assert.False(filter.Allows(LogLevel.Warning));

        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(filter.Allows(LogLevel.Warning));
    }

    [Fact]
    public async Task A_silo_arms_the_filter_in_its_logging_and_starts_without_a_watchdog_warning()
    {
        var log = new RecordingLog(LogLevel.Warning);
        await using var cluster = await SessionCluster.StartAsync(redis: null, 1, configureSilo: silo => silo.Services.AddSingleton<ILoggerProvider>(log));
        var services = cluster.Cluster.Silos[0].ServiceProvider;

        Assert.True(services.GetRequiredService<WatchdogStartFilter>().Armed, "the filter did not see the watchdog's start stage");
        var rule = Assert.Single(services.GetRequiredService<IOptions<LoggerFilterOptions>>().Value.Rules, r => r.CategoryName == WatchdogStartFilter.Category);
        Assert.NotNull(rule.Filter);
        Assert.DoesNotContain(log.Entries, e => e.Category == WatchdogStartFilter.Category);
    }
}
