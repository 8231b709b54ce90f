using System.Collections.Immutable;
using System.Text;

namespace SessionGrains;

/// <summary>
/// The compact binary form of the two records there is one of per session: a session's state and its entry in
/// its user's index. Every session costs these bytes in Redis, so they hold nothing twice: no session id (it is in
/// the key), times as 100 ns ticks with the later ones relative to the creation time (exact, and a few bytes each),
/// the last-seen client only when it differs from the creating one, defaults left out behind one flags byte.
/// The layout is in docs/storage.md; a change to it is a new <see cref="Version"/>, and old versions stay readable.
/// </summary>
internal static class CompactStateCodec
{
    /// <summary>Version of the layout written first in each record.</summary>
    private const byte Version = 1;

    [Flags]
    private enum SessionFlags : byte
    {
        None = 0,
        Session = 1,
        RotatedTo = 2,
        LeasesUntil = 4,
    }

    [Flags]
    private enum InfoFlags : byte
    {
        None = 0,
        Role = 1,
        CreatedFrom = 2,
        LastSeenFromOwn = 4,      // differs from CreatedFrom: written after it
        LastSeenFromNone = 8,     // null while CreatedFrom is not
        Metadata = 16,
        Payload = 32,
        Counters = 64,            // signals, IP and User-Agent changes
        Version = 128,
    }

    public static byte[] EncodeSession(SessionState state, string sessionId)
    {
        using var stream = new MemoryStream(128);
        using var writer = new BinaryWriter(stream, Encoding.UTF8);
        writer.Write(Version);
        var flags = (state.Session is null ? 0 : SessionFlags.Session)
            | (state.RotatedTo is null ? 0 : SessionFlags.RotatedTo)
            | (state.LeasesUntil is null ? 0 : SessionFlags.LeasesUntil);
        writer.Write((byte)flags);
        if (state.Session is { } session)
        {
            if (session.SessionId != sessionId)
            {
                throw new InvalidOperationException("A session is stored under its own id.");
            }

            WriteInfo(writer, session);
        }

        if (state.RotatedTo is { } rotatedTo)
        {
            writer.Write(rotatedTo);
            WriteTime(writer, state.RotationGraceEndsAt);
        }

        if (state.LeasesUntil is { } leasesUntil)
        {
            WriteTime(writer, leasesUntil);
        }

        return stream.ToArray();
    }

    public static SessionState DecodeSession(ReadOnlySpan<byte> bytes, string sessionId)
    {
        using var reader = Reader(bytes);
        var flags = (SessionFlags)reader.ReadByte();
        var state = new SessionState();
        if (flags.HasFlag(SessionFlags.Session))
        {
            state.Session = ReadInfo(reader, sessionId);
        }

        if (flags.HasFlag(SessionFlags.RotatedTo))
        {
            state.RotatedTo = reader.ReadString();
            state.RotationGraceEndsAt = ReadTime(reader);
        }

        if (flags.HasFlag(SessionFlags.LeasesUntil))
        {
            state.LeasesUntil = ReadTime(reader);
        }

        return state;
    }

    /// <summary>One entry of a user index (stored as one hash field, named by the session id).</summary>
    public static byte[] EncodeSummary(SessionSummary summary)
    {
        using var stream = new MemoryStream(64);
        using var writer = new BinaryWriter(stream, Encoding.UTF8);
        writer.Write(Version);
        var flags = CommonFlags(summary.Role, summary.CreatedFrom, summary.LastSeenFrom);
        writer.Write((byte)flags);
        WriteCommon(writer, flags, summary.Role, summary.CreatedAt, summary.LastAccessedAt, summary.IdleTimeout, summary.AbsoluteExpiresAt, summary.CreatedFrom, summary.LastSeenFrom);
        return stream.ToArray();
    }

    public static SessionSummary DecodeSummary(ReadOnlySpan<byte> bytes, string sessionId)
    {
        using var reader = Reader(bytes);
        var (role, createdAt, lastAccessedAt, idleTimeout, absoluteExpiresAt, createdFrom, lastSeenFrom) = ReadCommon(reader, (InfoFlags)reader.ReadByte());
        return new SessionSummary(sessionId, role, createdAt, lastAccessedAt, idleTimeout, absoluteExpiresAt, createdFrom, lastSeenFrom);
    }

    private static void WriteInfo(BinaryWriter writer, SessionInfo session)
    {
        var flags = CommonFlags(session.Role, session.CreatedFrom, session.LastSeenFrom)
            | (session.Metadata.IsEmpty ? 0 : InfoFlags.Metadata)
            | (session.Payload.IsEmpty ? 0 : InfoFlags.Payload)
            | (session is { Signals: SessionSignals.None, IpChanges: 0, UserAgentChanges: 0 } ? 0 : InfoFlags.Counters)
            | (session.Version == 0 ? 0 : InfoFlags.Version);
        writer.Write((byte)flags);
        writer.Write(session.UserId);
        WriteCommon(writer, flags, session.Role, session.CreatedAt, session.LastAccessedAt, session.IdleTimeout, session.AbsoluteExpiresAt, session.CreatedFrom, session.LastSeenFrom);
        if (flags.HasFlag(InfoFlags.Metadata))
        {
            writer.Write7BitEncodedInt(session.Metadata.Count);
            foreach (var (key, value) in session.Metadata)
            {
                writer.Write(key);
                writer.Write(value);
            }
        }

        if (flags.HasFlag(InfoFlags.Payload))
        {
            writer.Write7BitEncodedInt(session.Payload.Length);
            writer.Write(session.Payload.Span);
        }

        if (flags.HasFlag(InfoFlags.Counters))
        {
            writer.Write7BitEncodedInt((int)session.Signals);
            writer.Write7BitEncodedInt(session.IpChanges);
            writer.Write7BitEncodedInt(session.UserAgentChanges);
        }

        if (flags.HasFlag(InfoFlags.Version))
        {
            writer.Write7BitEncodedInt64(session.Version);
        }
    }

    private static SessionInfo ReadInfo(BinaryReader reader, string sessionId)
    {
        var flags = (InfoFlags)reader.ReadByte();
        var userId = reader.ReadString();
        var (role, createdAt, lastAccessedAt, idleTimeout, absoluteExpiresAt, createdFrom, lastSeenFrom) = ReadCommon(reader, flags);
        var metadata = ImmutableDictionary<string, string>.Empty;
        if (flags.HasFlag(InfoFlags.Metadata))
        {
            var builder = ImmutableDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
            for (var count = reader.Read7BitEncodedInt(); count > 0; count--)
            {
                builder[reader.ReadString()] = reader.ReadString();
            }

            metadata = builder.ToImmutable();
        }

        var payload = flags.HasFlag(InfoFlags.Payload) ? reader.ReadBytes(reader.Read7BitEncodedInt()) : [];
        var (signals, ipChanges, userAgentChanges) = flags.HasFlag(InfoFlags.Counters)
            ? ((SessionSignals)reader.Read7BitEncodedInt(), reader.Read7BitEncodedInt(), reader.Read7BitEncodedInt())
            : (SessionSignals.None, 0, 0);
        var version = flags.HasFlag(InfoFlags.Version) ? reader.Read7BitEncodedInt64() : 0;
        return new SessionInfo(sessionId, userId, role, createdAt, lastAccessedAt, idleTimeout, absoluteExpiresAt, createdFrom, lastSeenFrom,
            metadata, version, payload, signals, ipChanges, userAgentChanges);
    }

    private static InfoFlags CommonFlags(string? role, ClientInfo? createdFrom, ClientInfo? lastSeenFrom) =>
        (role is null ? 0 : InfoFlags.Role)
        | (createdFrom is null ? 0 : InfoFlags.CreatedFrom)
        | (lastSeenFrom == createdFrom ? 0 : lastSeenFrom is null ? InfoFlags.LastSeenFromNone : InfoFlags.LastSeenFromOwn);

    // What a session and its index entry share: the role, the times and the clients.
    private static void WriteCommon(BinaryWriter writer, InfoFlags flags, string? role, DateTimeOffset createdAt, DateTimeOffset lastAccessedAt,
        TimeSpan idleTimeout, DateTimeOffset absoluteExpiresAt, ClientInfo? createdFrom, ClientInfo? lastSeenFrom)
    {
        if (role is not null)
        {
            writer.Write(role);
        }

        WriteTime(writer, createdAt);
        writer.Write7BitEncodedInt64(lastAccessedAt.UtcTicks - createdAt.UtcTicks);
        writer.Write7BitEncodedInt64(idleTimeout.Ticks);
        writer.Write7BitEncodedInt64(absoluteExpiresAt.UtcTicks - createdAt.UtcTicks);
        if (createdFrom is not null)
        {
            WriteClient(writer, createdFrom);
        }

        if (flags.HasFlag(InfoFlags.LastSeenFromOwn))
        {
            WriteClient(writer, lastSeenFrom!);
        }
    }

    private static (string? Role, DateTimeOffset CreatedAt, DateTimeOffset LastAccessedAt, TimeSpan IdleTimeout, DateTimeOffset AbsoluteExpiresAt, ClientInfo? CreatedFrom, ClientInfo? LastSeenFrom)
        ReadCommon(BinaryReader reader, InfoFlags flags)
    {
        var role = flags.HasFlag(InfoFlags.Role) ? reader.ReadString() : null;
        var createdAt = ReadTime(reader);
        var lastAccessedAt = createdAt.AddTicks(reader.Read7BitEncodedInt64());
        var idleTimeout = TimeSpan.FromTicks(reader.Read7BitEncodedInt64());
        var absoluteExpiresAt = createdAt.AddTicks(reader.Read7BitEncodedInt64());
        var createdFrom = flags.HasFlag(InfoFlags.CreatedFrom) ? ReadClient(reader) : null;
        var lastSeenFrom = flags.HasFlag(InfoFlags.LastSeenFromOwn) ? ReadClient(reader)
            : flags.HasFlag(InfoFlags.LastSeenFromNone) ? null
            : createdFrom;
        return (role, createdAt, lastAccessedAt, idleTimeout, absoluteExpiresAt, createdFrom, lastSeenFrom);
    }

    // An empty string stands for null: the store never keeps empty client values (ClientInfo.Normalize).
    private static void WriteClient(BinaryWriter writer, ClientInfo client)
    {
        writer.Write(client.IpAddress ?? string.Empty);
        writer.Write(client.UserAgent ?? string.Empty);
    }

    private static ClientInfo ReadClient(BinaryReader reader) =>
        new(NullIfEmpty(reader.ReadString()), NullIfEmpty(reader.ReadString()));

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;

    // Times are UTC ticks; the store creates every time in UTC.
    private static void WriteTime(BinaryWriter writer, DateTimeOffset time) => writer.Write7BitEncodedInt64(time.UtcTicks);

    private static DateTimeOffset ReadTime(BinaryReader reader) => new(reader.Read7BitEncodedInt64(), TimeSpan.Zero);

    private static BinaryReader Reader(ReadOnlySpan<byte> bytes)
    {
        var reader = new BinaryReader(new MemoryStream(bytes.ToArray(), writable: false), Encoding.UTF8);
        var version = reader.ReadByte();
        return version == Version
            ? reader
            : throw new InvalidDataException($"Stored record layout {version} is newer than this silo reads ({Version}); upgrade the silo.");
    }
}
