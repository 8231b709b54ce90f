using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>What the fault tests do to the processes they start (silos, frontends, Redis): kill, pause, resume, stop.</summary>
internal static class ChildProcesses
{
    public const int Terminate = 15;
    public const int Pause = 19; // SIGSTOP
    public const int Resume = 18; // SIGCONT

    /// <summary>
    /// The build output of <paramref name="project"/> (a folder of the repository) in the tests' own configuration
    /// and framework, which must hold <paramref name="assembly"/>.
    /// </summary>
    public static string BuildOutput(string project, string assembly)
    {
        // Tests/bin/<Configuration>/<framework> -> <project>/bin/<Configuration>/<framework>
        var testOutput = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var directory = Path.Combine(RepositoryDirectory.Root, project, "bin", testOutput.Parent!.Name, testOutput.Name);
        return File.Exists(Path.Combine(directory, assembly))
            ? directory
            : throw new InvalidOperationException($"{assembly} was not found in {directory}: build the solution first.");
    }

    /// <summary>
    /// Starts <paramref name="assembly"/> of <paramref name="directory"/> with <c>dotnet</c>, its HTTP on a loopback
    /// port, with <paramref name="environment"/>; its output goes to <paramref name="logPath"/> (where the token-leak
    /// check reads it), and it is killed if the test process exits first.
    /// </summary>
    public static Process StartDotnet(string directory, string assembly, int httpPort, IReadOnlyDictionary<string, string> environment, string logPath)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { Path.Combine(directory, assembly), "--urls", $"http://127.0.0.1:{httpPort}" },
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"{assembly} did not start.");
        var log = new StreamWriter(logPath) { AutoFlush = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) { log.WriteLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) { log.WriteLine(e.Data); } };
        process.Exited += (_, _) => log.Dispose();
        process.EnableRaisingEvents = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Kill(process);
        return process;
    }

    /// <summary>Kills the process and its children at once (kill -9) and waits a little for it to be gone.</summary>
    public static void Kill(Process? process)
    {
        try
        {
            if (process is { HasExited: false })
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    /// <summary>Kills a server's process tree and deletes its directory: a fixture's stop on every path (dispose, test-process exit).</summary>
    public static void KillAndDelete(Process? process, string directory)
    {
        Kill(process);
        try
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            // A file still held open by a process on its way out; the temporary directory's cleaner takes it later.
        }
    }

    /// <summary>Sends a POSIX signal (<see cref="Terminate"/>, <see cref="Pause"/>, <see cref="Resume"/>).</summary>
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static extern int Signal(int pid, int signal);
}
