using System.Buffers.Text;
using System.Collections.Immutable;
using System.Globalization;
using System.Text;

namespace SessionGrains;

/// <summary>Paging through a user's sessions, oldest first, with an opaque cursor (created-at ticks and session id).</summary>
internal sealed partial class UserSessionsGrain
{
    private const int MaxPageSize = 1000;

    public Task<SessionPage> ListAsync(int limit, string? cursor) =>
        StorageConflicts.RetryAsync(() => ListCoreAsync(limit, cursor), ReloadAsync);

    private async Task<SessionPage> ListCoreAsync(int limit, string? cursor)
    {
        if (limit is < 1 or > MaxPageSize)
        {
            throw new ArgumentOutOfRangeException(nameof(limit), $"The page size must be between 1 and {MaxPageSize}.");
        }

        var after = cursor is null ? default((DateTimeOffset, string)?) : ParseCursor(cursor);
        await PruneAndSaveAsync();

        var ordered = Sessions.Values
            .OrderBy(s => s.CreatedAt)
            .ThenBy(s => s.SessionId, StringComparer.Ordinal)
            .Where(s => after is not { } a || s.CreatedAt > a.Item1 || (s.CreatedAt == a.Item1 && string.CompareOrdinal(s.SessionId, a.Item2) > 0))
            .Take(limit + 1)
            .ToList();
        var page = ordered.Take(limit).ToImmutableArray();
        var next = ordered.Count > limit ? FormatCursor(page[^1]) : null;
        return new SessionPage(page, next);
    }

    private static string FormatCursor(SessionSummary last) =>
        Base64Url.EncodeToString(Encoding.UTF8.GetBytes(
            last.CreatedAt.UtcTicks.ToString(CultureInfo.InvariantCulture) + "|" + last.SessionId));

    private static (DateTimeOffset, string) ParseCursor(string cursor)
    {
        try
        {
            var text = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(cursor));
            var bar = text.IndexOf('|', StringComparison.Ordinal);
            var ticks = long.Parse(text.AsSpan(0, bar), NumberStyles.None, CultureInfo.InvariantCulture);
            return (new DateTimeOffset(ticks, TimeSpan.Zero), text[(bar + 1)..]);
        }
        catch (Exception exception) when (exception is FormatException or ArgumentException or OverflowException)
        {
            throw new ArgumentException("The cursor is not one this store returned.", nameof(cursor), exception);
        }
    }
}
