using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>
/// Sees every log line that every host of the test run writes (silos, HTTP hosts, clients; Debug and up,
/// Trace for SessionGrains) and remembers any that contains a session token. Checked by
/// <see cref="TokenLogWatchFixture"/> when the run ends, and by tests that want it at once.
/// </summary>
public static partial class TokenLogWatch
{
    private static readonly ConcurrentQueue<string> Leaks = new();
    private static long _lines;

    public static long Lines => Interlocked.Read(ref _lines);

    public static IReadOnlyCollection<string> LeakedLines => Leaks;

    /// <summary>Adds the watch to a host's logging.</summary>
    public static ILoggingBuilder AddTokenLogWatch(this ILoggingBuilder logging) =>
        logging.SetMinimumLevel(LogLevel.Debug)
            .AddFilter("SessionGrains", LogLevel.Trace)
            .AddProvider(new Provider());

    /// <summary>True when <paramref name="text"/> holds something shaped like a session token.</summary>
    public static bool ContainsToken(string text) => TokenPattern().IsMatch(text);

    public static void Inspect(string category, string text)
    {
        Interlocked.Increment(ref _lines);
        if (ContainsToken(text))
        {
            Leaks.Enqueue($"{category}: {TokenPattern().Replace(text, "<TOKEN>")}");
        }
    }

    [GeneratedRegex("sg1_[A-Za-z0-9-]{1,16}_[A-Za-z0-9_-]{20,}")]
    private static partial Regex TokenPattern();

    private sealed class Provider : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(categoryName);

        public void Dispose()
        {
        }
    }

    private sealed class Logger(string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull
        {
            Inspect(category, state.ToString() ?? "");
            return null;
        }

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var text = formatter(state, exception);
            if (state is IEnumerable<KeyValuePair<string, object?>> values)
            {
                text += " " + string.Join(" ", values.Select(v => $"{v.Key}={v.Value}"));
            }

            Inspect(category, exception is null ? text : text + " " + exception);
        }
    }
}

/// <summary>Fails the run if any host logged a token at any point.</summary>
public sealed class TokenLogWatchFixture : IAsyncLifetime
{
    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync()
    {
        if (TokenLogWatch.LeakedLines.Count > 0)
        {
            throw new InvalidOperationException(
                $"{TokenLogWatch.LeakedLines.Count} of {TokenLogWatch.Lines} log lines written during the test run contain a session token:\n"
                + string.Join("\n", TokenLogWatch.LeakedLines.Take(20)));
        }

        return ValueTask.CompletedTask;
    }
}
