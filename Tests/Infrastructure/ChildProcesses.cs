using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>What the fault tests do to the processes they start (silos, frontends, Redis): kill, pause, resume, stop.</summary>
internal static class ChildProcesses
{
    public const int Terminate = 15;
    public const int Pause = 19; // SIGSTOP
    public const int Resume = 18; // SIGCONT

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

    /// <summary>Sends a POSIX signal (<see cref="Terminate"/>, <see cref="Pause"/>, <see cref="Resume"/>).</summary>
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static extern int Signal(int pid, int signal);
}
