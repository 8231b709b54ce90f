using System.Collections.Immutable;
using System.Text;

namespace SessionGrains;

/// <summary>
/// The checks a create or update must pass before anything changes: timeouts, data size, limits.
/// Violations throw <see cref="ArgumentException"/> (HTTP 400) and leave all state untouched.
/// </summary>
internal static class SessionRules
{
    public static SessionInfo NewSession(string sessionId, string userId, SessionCreateOptions create, SessionGrainsOptions options, DateTimeOffset now)
    {
        var idle = create.IdleTimeout ?? options.DefaultIdleTimeout;
        var absolute = create.AbsoluteTimeout ?? options.DefaultAbsoluteTimeout;
        if (idle <= TimeSpan.Zero || idle > options.MaxAbsoluteTimeout)
        {
            throw new ArgumentOutOfRangeException(nameof(create), $"The idle timeout must be positive and at most {options.MaxAbsoluteTimeout}.");
        }

        if (absolute <= TimeSpan.Zero || absolute > options.MaxAbsoluteTimeout)
        {
            throw new ArgumentOutOfRangeException(nameof(create), $"The absolute timeout must be positive and at most {options.MaxAbsoluteTimeout}.");
        }

        var metadata = create.Metadata ?? ImmutableDictionary<string, string>.Empty;
        var client = ClientInfo.Normalize(create.Client);

        // Stored twice: as where the session was created from and as where it was last seen.
        EnsureDataSize(create.Role, metadata, create.Payload.Length, 2 * ClientInfo.StoredBytes(client), options);
        return new SessionInfo(
            sessionId, userId, create.Role, now, now, idle, now + absolute,
            client, client, metadata, Version: 1, create.Payload);
    }

    public static (int Limit, SessionLimitPolicy Policy) Limit(SessionCreateOptions create, SessionGrainsOptions options)
    {
        var limit = create.MaxSessionsPerUser ?? options.MaxSessionsPerUser;
        if (limit < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(create), "The per-user session limit must be at least 1.");
        }

        var policy = create.LimitPolicy ?? options.LimitPolicy;
        if (!Enum.IsDefined(policy))
        {
            throw new ArgumentOutOfRangeException(nameof(create), "Unknown session limit policy.");
        }

        return (limit, policy);
    }

    /// <summary>The session after <paramref name="change"/>, with its version moved on.</summary>
    public static SessionInfo Apply(SessionInfo session, SessionUpdate change, SessionGrainsOptions options, DateTimeOffset now)
    {
        var metadata = session.Metadata;
        if (change.Metadata is { Count: > 0 } edits)
        {
            var builder = metadata.ToBuilder();
            foreach (var (key, value) in edits)
            {
                ArgumentException.ThrowIfNullOrEmpty(key, "metadata key");
                if (value is null)
                {
                    builder.Remove(key);
                }
                else
                {
                    builder[key] = value;
                }
            }

            metadata = builder.ToImmutable();
        }

        var role = change.Role ?? session.Role;
        var payload = change.Payload is { } bytes ? bytes : session.Payload;
        EnsureDataSize(role, metadata, payload.Length, ClientInfo.StoredBytes(session.CreatedFrom) + ClientInfo.StoredBytes(session.LastSeenFrom), options);
        return session with
        {
            Role = role,
            Metadata = metadata,
            Payload = payload,
            Version = session.Version + 1,
            LastAccessedAt = now,
        };
    }

    public static TimeSpan GracePeriod(TimeSpan requested, SessionGrainsOptions options)
    {
        if (requested < TimeSpan.Zero || requested > options.MaxRotationGracePeriod)
        {
            throw new ArgumentOutOfRangeException(nameof(requested), $"The rotation grace period must be between 0 and {options.MaxRotationGracePeriod}.");
        }

        return requested;
    }

    private static void EnsureDataSize(string? role, ImmutableDictionary<string, string> metadata, int payloadBytes, int clientBytes, SessionGrainsOptions options)
    {
        long size = payloadBytes + clientBytes + (role is null ? 0 : Encoding.UTF8.GetByteCount(role));
        foreach (var (key, value) in metadata)
        {
            size += Encoding.UTF8.GetByteCount(key) + Encoding.UTF8.GetByteCount(value);
            if (size > options.MaxSessionDataBytes)
            {
                break;
            }
        }

        if (size > options.MaxSessionDataBytes)
        {
            throw new ArgumentException(
                $"The session's role, metadata, payload and client details exceed the limit of {options.MaxSessionDataBytes} bytes.", nameof(metadata));
        }
    }
}
