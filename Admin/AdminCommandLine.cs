using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace SessionGrains.Admin;

/// <summary>
/// The <c>sessiongrains-admin</c> commands over a running cluster's HTTP API. The API key is sent only as the
/// <c>X-Api-Key</c> header and never written to the output or an error.
/// </summary>
public static partial class AdminCommandLine
{
    public const string ApiKeyVariable = "SESSIONGRAINS_API_KEY";
    public const string DefaultUrl = "http://localhost:5080";

    /// <summary>Runs one command line without standard input or a terminal; returns the exit code (see <see cref="ExitCodes"/>).</summary>
    public static Task<int> RunAsync(IReadOnlyList<string> args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default) =>
        RunAsync(args, TextReader.Null, output, error, errorIsTerminal: false, cancellationToken);

    /// <summary>
    /// Runs one command line; returns the exit code (see <see cref="ExitCodes"/>). <paramref name="input"/> is read for
    /// <c>--users-file -</c>; progress bars are drawn on <paramref name="error"/> only when <paramref name="errorIsTerminal"/>.
    /// </summary>
    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextReader input, TextWriter output, TextWriter error, bool errorIsTerminal, CancellationToken cancellationToken = default)
    {
        var root = Build(input, output, error, errorIsTerminal);
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var parseError in parsed.Errors)
            {
                await error.WriteLineAsync(parseError.Message);
            }

            await error.WriteLineAsync("Run with --help for the commands and their arguments.");
            return ExitCodes.BadArgument;
        }

        try
        {
            return await parsed.InvokeAsync(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false }, cancellationToken);
        }
        catch (AdminCommandException e)
        {
            await error.WriteLineAsync(e.Message);
            return e.ExitCode;
        }
    }

    private static RootCommand Build(TextReader input, TextWriter output, TextWriter error, bool errorIsTerminal)
    {
        var global = new GlobalOptions();
        var userId = new Argument<string>("userId") { Description = "The user id, as the application passed it (any characters)." };
        var sessionId = new Argument<string>("sessionId") { Description = "The session id from 'sessions list'." };
        var except = new Option<string?>("--except") { Description = "A session id to keep (the caller's own device)." };

        var pageSize = new Option<int>("--page-size")
        {
            Description = "Sessions asked for per request while walking the pages.",
            DefaultValueFactory = _ => 100,
            Validators = { result => { if (result.GetValueOrDefault<int>() is < 1 or > 1000) { result.AddError("--page-size must be between 1 and 1000."); } } },
        };
        var list = new Command("list", "List a user's sessions (every page).") { userId, pageSize };
        list.SetAction(async (parsed, ct) =>
        {
            using var api = Api(parsed, global);
            var sessions = await api.ListSessionsAsync(parsed.GetRequiredValue(userId), parsed.GetValue(pageSize), ct);
            if (parsed.GetValue(global.Json))
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(sessions, AdminJson.Options));
            }
            else if (sessions.Count == 0)
            {
                await output.WriteLineAsync("No live sessions.");
            }
            else
            {
                TextTable.Write(output, ["SESSION", "ROLE", "CREATED", "LAST SEEN", "EXPIRES", "FROM"], sessions.Select(SessionRow));
            }

            return ExitCodes.Ok;
        });

        var revoke = new Command("revoke", "End one session of a user.") { userId, sessionId };
        revoke.SetAction(async (parsed, ct) =>
        {
            using var api = Api(parsed, global);
            var id = parsed.GetRequiredValue(sessionId);
            await api.RevokeAsync(parsed.GetRequiredValue(userId), id, ct);
            await output.WriteLineAsync(parsed.GetValue(global.Json)
                ? JsonSerializer.Serialize(new { revoked = id }, AdminJson.Options)
                : $"Revoked session {id}.");
            return ExitCodes.Ok;
        });

        var oneUser = new Argument<string?>("userId") { Description = "The user id (or give --users-file).", Arity = ArgumentArity.ZeroOrOne };
        var usersFile = new Option<string?>("--users-file") { Description = "Sign out every user of this file instead: one user id a line, '-' for standard input; blank lines and '#' comments are skipped." };
        var revokeAll = new Command("revoke-all", "Sign a user out everywhere (optionally but one session), or every user of --users-file.") { oneUser, except, usersFile };
        revokeAll.SetAction(async (parsed, ct) =>
        {
            var (user, file) = (parsed.GetValue(oneUser), parsed.GetValue(usersFile));
            if ((user is null) == (file is null))
            {
                throw new AdminCommandException(ExitCodes.BadArgument, "Give either a user id or --users-file, not both or neither.");
            }

            if (file is not null)
            {
                if (parsed.GetValue(except) is not null)
                {
                    throw new AdminCommandException(ExitCodes.BadArgument, "--except names one user's session; it does not go with --users-file.");
                }

                return await RevokeAllUsersAsync(parsed, global, file, input, output, error, errorIsTerminal, ct);
            }

            using var api = Api(parsed, global);
            var ended = await api.RevokeAllAsync(user!, parsed.GetValue(except), ct);
            await output.WriteLineAsync(parsed.GetValue(global.Json)
                ? JsonSerializer.Serialize(new { ended }, AdminJson.Options)
                : $"Ended {ended} session{(ended == 1 ? "" : "s")}.");
            return ExitCodes.Ok;
        });

        var count = new Command("count", "Count the live sessions of the cluster.");
        count.SetAction(async (parsed, ct) =>
        {
            using var api = Api(parsed, global);
            var active = await api.CountAsync(ct);
            await output.WriteLineAsync(parsed.GetValue(global.Json)
                ? JsonSerializer.Serialize(new { activeSessions = active }, AdminJson.Options)
                : $"{active} active session{(active == 1 ? "" : "s")}");
            return ExitCodes.Ok;
        });

        var silos = new Command("silos", "List the cluster's silos (active, joining, shutting down; dead ones for an hour) as the silo behind --url sees them.");
        silos.SetAction(async (parsed, ct) =>
        {
            using var api = Api(parsed, global);
            var members = await api.SilosAsync(ct);
            if (parsed.GetValue(global.Json))
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(members, AdminJson.Options));
            }
            else
            {
                TextTable.Write(output, ["ADDRESS", "NAME", "HOST", "STATUS", "STARTED", "LAST ALIVE", "THIS"], members.Select(SiloRow));
            }

            return ExitCodes.Ok;
        });

        var health = new Command("health", "Ask the silo behind --url whether it is ready (an active member with working storage), and what fails.");
        health.SetAction(async (parsed, ct) =>
        {
            using var api = Api(parsed, global);
            var (healthy, status, failing) = await api.HealthAsync(ct);
            await output.WriteLineAsync(parsed.GetValue(global.Json)
                ? JsonSerializer.Serialize(new { healthy, status, failing }, AdminJson.Options)
                : string.Join(Environment.NewLine, failing.Prepend(status)));
            return healthy ? ExitCodes.Ok : ExitCodes.Failed;
        });

        var keyId = new Option<string?>("--id") { Description = "The key id (1-16 of A-Z a-z 0-9 -); default k<UTC yyyyMMddHHmm>." };
        var generate = new Command("generate", "Print a new token key for SessionStore:TokenKeys and how to roll it in.") { keyId };
        generate.SetAction(async parsed =>
        {
            var id = parsed.GetValue(keyId) ?? "k" + DateTime.UtcNow.ToString("yyyyMMddHHmm", CultureInfo.InvariantCulture);
            if (!KeyIdPattern().IsMatch(id))
            {
                throw new AdminCommandException(ExitCodes.BadArgument, "--id must be 1-16 characters of A-Z, a-z, 0-9 and '-'.");
            }

            var key = id + ":" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
            if (parsed.GetValue(global.Json))
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(new { key }, AdminJson.Options));
                return ExitCodes.Ok;
            }

            await output.WriteLineAsync(key);
            await output.WriteLineAsync();
            await output.WriteLineAsync("To rotate keys (every silo and frontend, one process at a time; docs/keys.md):");
            await output.WriteLineAsync($"  1. Add the new key second in SessionStore:TokenKeys: \"<old id>:...,{id}:...\". Every process now accepts it.");
            await output.WriteLineAsync($"  2. Promote it: \"{id}:...,<old id>:...\". New tokens are signed with the first key; old ones still validate.");
            await output.WriteLineAsync("  3. Keep the old key until every token signed with it has expired (the longest absolute timeout).");
            await output.WriteLineAsync("  4. Remove the old key everywhere; tokens still signed with it stop validating.");
            await output.WriteLineAsync("Keep the key out of source control and logs: it is a secret like a password.");
            return ExitCodes.Ok;
        });

        var root = new RootCommand("Administer a running SessionGrains cluster over its HTTP API.")
        {
            new Command("sessions", "A user's sessions.") { list, revoke, revokeAll },
            count,
            silos,
            health,
            new Command("keys", "Token signing keys.") { generate },
        };
        root.Add(global.Url);
        root.Add(global.ApiKey);
        root.Add(global.Json);
        root.Add(global.TimeoutSeconds);
        return root;
    }

    /// <summary>The options every command takes; one set per parse, since a symbol belongs to one command tree.</summary>
    private sealed class GlobalOptions
    {
    public readonly Option<string> Url = new("--url")
    {
        Description = "The HTTP API of any silo of the cluster.",
        DefaultValueFactory = _ => DefaultUrl,
        Recursive = true,
    };

    public readonly Option<string?> ApiKey = new("--api-key")
    {
        Description = $"The admin API key (SessionStore:ApiKey); defaults to ${ApiKeyVariable}.",
        Recursive = true,
    };

    public readonly Option<bool> Json = new("--json")
    {
        Description = "Write JSON for scripts instead of a table.",
        Recursive = true,
    };

    public readonly Option<int> TimeoutSeconds = new("--timeout")
    {
        Description = "Seconds to wait for each answer.",
        DefaultValueFactory = _ => 30,
        Recursive = true,
    };
    }

    private static ClusterApi Api(ParseResult parsed, GlobalOptions global)
    {
        var timeout = parsed.GetValue(global.TimeoutSeconds);
        if (timeout <= 0)
        {
            throw new AdminCommandException(ExitCodes.BadArgument, "--timeout must be a positive number of seconds.");
        }

        var key = parsed.GetValue(global.ApiKey) ?? Environment.GetEnvironmentVariable(ApiKeyVariable);
        return ClusterApi.Create(parsed.GetValue(global.Url) ?? DefaultUrl, key, TimeSpan.FromSeconds(timeout));
    }

    private static async Task<int> RevokeAllUsersAsync(ParseResult parsed, GlobalOptions global, string file, TextReader input, TextWriter output, TextWriter error, bool errorIsTerminal, CancellationToken ct)
    {
        var json = parsed.GetValue(global.Json);
        var users = await UsersFileSignOut.ReadUserIdsAsync(file, input, ct);
        using var api = Api(parsed, global);
        var progress = errorIsTerminal && !json ? new ProgressBar(error, users.Count, "users") : null;
        var outcome = await UsersFileSignOut.RunAsync(api, users, progress, ct);
        if (json)
        {
            await output.WriteLineAsync(JsonSerializer.Serialize(new
            {
                total = users.Count,
                done = outcome.Done,
                failed = outcome.Failed,
                ended = outcome.Ended,
                stoppedBy = outcome.StoppedBy?.Message,
                users = outcome.Users.Select(u => new { userId = u.UserId, status = u.Status, ended = u.Ended, error = u.Error }),
            }, UsersFileJson));
        }
        else
        {
            TextTable.Write(output, ["USER", "ENDED", "RESULT"], outcome.Users.Select(u => new[]
            {
                u.UserId, u.Ended?.ToString(CultureInfo.InvariantCulture) ?? "", u.Error is { } reason ? "failed: " + reason : u.Ended is null ? "not done" : "done",
            }));
            await output.WriteLineAsync($"Signed out {outcome.Done} of {users.Count} users ({outcome.Ended} session{(outcome.Ended == 1 ? "" : "s")} ended); {outcome.Failed} failed.");
        }

        if (outcome.StoppedBy is { } stopped)
        {
            await error.WriteLineAsync($"Stopped after {outcome.Done + outcome.Failed} of {users.Count} users: {stopped.Message}");
        }

        return outcome.ExitCode;
    }

    // Per user, only what applies: "ended" when done, "error" when failed.
    private static readonly JsonSerializerOptions UsersFileJson = new(AdminJson.Options) { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };

    private static string[] SiloRow(JsonElement silo) =>
    [
        Text(silo, "address"),
        Text(silo, "name"),
        Text(silo, "host"),
        Text(silo, "status"),
        Time(silo, "startedAt"),
        Time(silo, "lastAliveAt"),
        silo.TryGetProperty("isThisSilo", out var self) && self.ValueKind == JsonValueKind.True ? "*" : "",
    ];

    private static string[] SessionRow(JsonElement session) =>
    [
        Text(session, "sessionId"),
        Text(session, "role"),
        Time(session, "createdAt"),
        Time(session, "lastAccessedAt"),
        Time(session, "expiresAt"),
        session.TryGetProperty("lastSeenFrom", out var from) && from.ValueKind == JsonValueKind.Object ? Text(from, "ip") : "",
    ];

    private static string Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString()! : "";

    private static string Time(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.TryGetDateTimeOffset(out var time)
            ? time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)
            : "";

    [GeneratedRegex("^[A-Za-z0-9-]{1,16}$")]
    private static partial Regex KeyIdPattern();
}
