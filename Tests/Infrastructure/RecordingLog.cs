using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>A logger provider that keeps what is logged (from <paramref name="minimumLevel"/> up, while <see cref="Recording"/>), for tests that check the log.</summary>
public sealed class RecordingLog(LogLevel minimumLevel = LogLevel.Trace) : ILoggerProvider
{
    private volatile bool _recording = true;

    /// <summary>Whether entries are kept now; on from the start.</summary>
    public bool Recording
    {
        get => _recording;
        set => _recording = value;
    }

    private LogLevel MinimumLevel => minimumLevel;

    public ConcurrentQueue<LogEntry> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(RecordingLog log, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= log.MinimumLevel;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (log.Recording && IsEnabled(logLevel))
            {
                log.Entries.Enqueue(new LogEntry(logLevel, category, eventId.Id, formatter(state, exception), exception?.GetType().Name));
            }
        }
    }
}

/// <summary>One entry a <see cref="RecordingLog"/> kept.</summary>
public sealed record class LogEntry(LogLevel Level, string Category, int Id, string Message, string? ExceptionType)
{
    public override string ToString() => $"{Level} {Category}: {Message} {ExceptionType}";
}
