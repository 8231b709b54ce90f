using System.Net;
using System.Net.Sockets;

namespace SessionGrains.Silo;

/// <summary>
/// Counts requests refused for a missing or wrong API key per calling address (an IPv6 caller by its /64, which one
/// machine usually holds whole). Once an address has <see cref="FailuresPerMinute"/> failures in its minute, all its
/// requests get 429 until the minute ends, so a key cannot be guessed at speed. The table is bounded: when it is full
/// of live windows, new addresses share one budget.
/// </summary>
internal sealed class FailedApiKeyLimiter(TimeProvider time)
{
    /// <summary>Refused attempts one address may make per minute before it gets 429.</summary>
    public const int FailuresPerMinute = 10;

    /// <summary>Most addresses remembered at once.</summary>
    internal const int MaxEntries = 10_000;

    private readonly Lock _lock = new();
    private readonly CallerFailureWindows _callers = new(MaxEntries);

    /// <summary>Addresses remembered now (for the test of the memory bound).</summary>
    internal int Entries
    {
        get
        {
            lock (_lock)
            {
                return _callers.Count;
            }
        }
    }

    /// <summary>The caller an address counts as: itself, or its /64 for IPv6.</summary>
    public static string Caller(IPAddress? address)
    {
        if (address is null)
        {
            return "unknown";
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address.ToString();
        }

        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes) + "/64";
    }

    /// <summary>How long the caller must wait, when it has used up its failures for this minute.</summary>
    public TimeSpan? RetryAfter(string caller)
    {
        var now = time.GetUtcNow();
        lock (_lock)
        {
            return _callers.Current(caller, now) is { Failures: >= FailuresPerMinute } window ? window.Ends - now : null;
        }
    }

    /// <summary>Counts a refused attempt; true when it used up the caller's budget for this minute.</summary>
    public bool Failed(string caller)
    {
        lock (_lock)
        {
            return _callers.Add(caller, time.GetUtcNow()).Failures == FailuresPerMinute;
        }
    }
}
