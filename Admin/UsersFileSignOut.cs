namespace SessionGrains.Admin;

/// <summary>
/// <c>sessions revoke-all --users-file</c>: signs out every user of a list (the incident case: compromised accounts),
/// a few users at a time. A user the cluster answers with an error is reported and the walk goes on; an unreachable
/// cluster or a refused key stops it, and the outcome says which users were not reached.
/// </summary>
internal static class UsersFileSignOut
{
    /// <summary>Users signed out at once: enough to hide the round trips, few enough not to crowd out the cluster's own traffic.</summary>
    public const int Concurrency = 4;

    /// <summary>How often one user is tried when the cluster asks to wait (429 or 503 with Retry-After).</summary>
    private const int Attempts = 3;

    private static readonly TimeSpan LongestWait = TimeSpan.FromMinutes(1);

    /// <summary>What happened to one user: <see cref="Ended"/> sessions when done, <see cref="Error"/> when it failed; neither when not reached.</summary>
    public sealed record class UserOutcome(string UserId, int? Ended, string? Error)
    {
        public string Status => Ended is not null ? "done" : Error is not null ? "failed" : "notDone";
    }

    /// <summary>The walk's result; <see cref="StoppedBy"/> is the failure that ended it early (unreachable, unauthorized).</summary>
    public sealed record class Outcome(IReadOnlyList<UserOutcome> Users, AdminCommandException? StoppedBy)
    {
        public int Done => Users.Count(u => u.Ended is not null);

        public int Failed => Users.Count(u => u.Error is not null);

        public int Ended => Users.Sum(u => u.Ended ?? 0);

        public int ExitCode => StoppedBy?.ExitCode ?? (Failed > 0 ? ExitCodes.Failed : ExitCodes.Ok);
    }

    /// <summary>
    /// The user ids of a file (<c>-</c>: <paramref name="stdin"/>), one a line, in order and once each. Blank lines and
    /// lines starting with <c>#</c> are skipped; spaces around an id are trimmed.
    /// </summary>
    public static async Task<List<string>> ReadUserIdsAsync(string path, TextReader stdin, CancellationToken ct)
    {
        string text;
        try
        {
            text = path == "-" ? await stdin.ReadToEndAsync(ct) : await File.ReadAllTextAsync(path, ct);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new AdminCommandException(ExitCodes.BadArgument, $"Cannot read --users-file '{path}': {e.Message}");
        }

        var users = text.Split('\n')
            .Select(line => line.Trim())
            .Where(line => line.Length > 0 && !line.StartsWith('#'))
            .Distinct(StringComparer.Ordinal)
            .ToList();
        return users.Count > 0
            ? users
            : throw new AdminCommandException(ExitCodes.BadArgument, $"--users-file '{path}' names no user (one user id a line; '#' starts a comment).");
    }

    public static async Task<Outcome> RunAsync(ClusterApi api, IReadOnlyList<string> users, ProgressBar? progress, CancellationToken ct)
    {
        var outcomes = new UserOutcome?[users.Count];
        AdminCommandException? stoppedBy = null;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        progress?.Start();
        try
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, users.Count), new ParallelOptions { MaxDegreeOfParallelism = Concurrency, CancellationToken = stop.Token }, async (i, token) =>
            {
                try
                {
                    outcomes[i] = new(users[i], await RevokeAllAsync(api, users[i], token), Error: null);
                }
                catch (AdminCommandException e) when (e.ExitCode is ExitCodes.Unreachable or ExitCodes.Unauthorized)
                {
                    // Every other user would fail the same way: stop, and keep the first reason.
                    Interlocked.CompareExchange(ref stoppedBy, e, null);
                    await stop.CancelAsync();
                    return;
                }
                catch (AdminCommandException e)
                {
                    outcomes[i] = new(users[i], Ended: null, e.Message);
                }

                progress?.Advance();
            });
        }
        catch (OperationCanceledException) when (stoppedBy is not null && !ct.IsCancellationRequested)
        {
        }
        finally
        {
            progress?.Clear();
        }

        return new(outcomes.Select((o, i) => o ?? new UserOutcome(users[i], Ended: null, Error: null)).ToList(), stoppedBy);
    }

    private static async Task<int> RevokeAllAsync(ClusterApi api, string userId, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await api.RevokeAllAsync(userId, except: null, ct);
            }
            catch (AdminCommandException e) when (e.RetryAfter is { } wait && wait <= LongestWait && attempt < Attempts)
            {
                // Users without sessions count against the caller's failure budget; the cluster says when the minute is over.
                await Task.Delay(wait, ct);
            }
        }
    }
}
