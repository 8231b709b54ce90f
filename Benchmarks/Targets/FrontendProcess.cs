using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace SessionGrains.Benchmarks;

/// <summary>
/// A frontend in a process of its own (this program with <see cref="Argument"/>), so that it can be frozen
/// with SIGSTOP as a stalled machine is: its connections stay open and nothing on it answers, which a frontend
/// inside the benchmark's process cannot do (disposing its client would close the connections, a different
/// fault). It is configured from the environment like a deployed frontend, reads tokens on standard input,
/// validates them (so it holds them, with its near cache on) and says how many were valid.
/// </summary>
internal sealed class FrontendProcess : IAsyncDisposable
{
    public const string Argument = "--frontend";

    private const string Ready = "ready";
    private const string Validated = "validated ";
    private const int StopSignal = 19;
    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(60);

    private readonly Process _process;
    private readonly EventHandler _stopAtExit;

    private FrontendProcess(Process process)
    {
        _process = process;
        // A run that ends early must not leave a frozen frontend behind.
        _stopAtExit = (_, _) => Stop(process);
        AppDomain.CurrentDomain.ProcessExit += _stopAtExit;
    }

    /// <summary>Starts the process with <paramref name="environment"/> (<c>SessionStore__*</c>) and waits until its client is connected.</summary>
    public static async Task<FrontendProcess> StartAsync(IReadOnlyDictionary<string, string?> environment)
    {
        var directory = SessionGrainsTarget.ProjectOutput("Benchmarks", "SessionGrains.Benchmarks.dll");
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { Path.Combine(directory, "SessionGrains.Benchmarks.dll"), Argument },
            WorkingDirectory = directory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start)!;
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        var frontend = new FrontendProcess(process);
        try
        {
            await frontend.ReadAnswerAsync(Ready);
            return frontend;
        }
        catch
        {
            await frontend.DisposeAsync();
            throw;
        }
    }

    /// <summary>Has the process validate each token once; returns how many were valid.</summary>
    public async Task<int> ValidateAsync(IEnumerable<string> tokens)
    {
        foreach (var token in tokens)
        {
            await _process.StandardInput.WriteLineAsync(token);
        }

        await _process.StandardInput.WriteLineAsync();
        await _process.StandardInput.FlushAsync();
        var answer = await ReadAnswerAsync(Validated);
        return int.Parse(answer.AsSpan(Validated.Length), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>SIGSTOP, then waits until the kernel shows the process stopped; its sockets stay open. Disposing kills it, frozen or not.</summary>
    public async Task FreezeAsync()
    {
        Signal(StopSignal);
        var stat = $"/proc/{_process.Id}/stat";
        for (var waited = 0; File.Exists(stat) && !IsStopped(await File.ReadAllTextAsync(stat)); waited++)
        {
            if (waited == 100)
            {
                throw new InvalidOperationException("The frontend process did not stop.");
            }

            await Task.Delay(10);
        }
    }

    /// <summary>The state field of /proc/pid/stat, after the command name in parentheses: T when stopped by a signal.</summary>
    private static bool IsStopped(string stat) => stat[(stat.LastIndexOf(')') + 1)..].TrimStart().StartsWith('T');

    public ValueTask DisposeAsync()
    {
        AppDomain.CurrentDomain.ProcessExit -= _stopAtExit;
        Stop(_process);
        _process.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>The frontend's side: connect, answer batches of tokens until standard input ends.</summary>
    public static async Task<int> RunAsync()
    {
        var builder = Host.CreateApplicationBuilder();
        // Standard output carries the answers: every log line goes to standard error.
        builder.Logging.ClearProviders().AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace).SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddSessionGrainsClient(builder.Configuration.GetSection(SessionClusterOptions.SectionName));
        using var host = builder.Build();
        await host.StartAsync();
        var store = host.Services.GetRequiredService<ISessionStore>();
        await Console.Out.WriteLineAsync(Ready);
        while (true)
        {
            var tokens = new List<string>();
            string? line;
            while (!string.IsNullOrEmpty(line = await Console.In.ReadLineAsync()))
            {
                tokens.Add(line);
            }

            if (line is null && tokens.Count == 0)
            {
                break;
            }

            var valid = 0;
            foreach (var chunk in tokens.Chunk(200))
            {
                valid += (await Task.WhenAll(chunk.Select(token => store.ValidateAsync(token)))).Count(session => session is not null);
            }

            await Console.Out.WriteLineAsync(Validated + valid.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (line is null)
            {
                break;
            }
        }

        await host.StopAsync(TimeSpan.FromSeconds(5));
        return 0;
    }

    private async Task<string> ReadAnswerAsync(string prefix)
    {
        using var timeout = new CancellationTokenSource(AnswerTimeout);
        while (await _process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                return line;
            }
        }

        throw new InvalidOperationException($"The frontend process ended (exit code {(_process.HasExited ? _process.ExitCode : -1)}) before answering.");
    }

    private void Signal(int signal)
    {
        if (SignalProcess(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"Signal {signal} to the frontend process failed.");
        }
    }

    private static void Stop(Process process)
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SignalProcess(int pid, int signal);
}
