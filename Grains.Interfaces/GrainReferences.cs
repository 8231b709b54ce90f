using System.Collections.Concurrent;

namespace SessionGrains;

/// <summary>
/// References to the session store's grains without Orleans' per-call interface lookup:
/// <c>IGrainFactory.GetGrain&lt;T&gt;(key)</c> reads the interface's attributes on every call, a visible cost on
/// the validation path (README, "Performance"). Here the interface type is resolved once per
/// interface, and the grain type is the fixed name in <see cref="GrainTypeNames"/>.
/// </summary>
public static class GrainReferences
{
    private static readonly ConcurrentDictionary<Type, GrainInterfaceType> InterfaceTypes = new();

    /// <summary>The session grain with this public session id.</summary>
    public static ISessionGrain Session(this IGrainFactory grains, string sessionId) =>
        Get<ISessionGrain>(grains, GrainTypeNames.Session, sessionId);

    /// <summary>The index grain of this user.</summary>
    public static IUserSessionsGrain UserSessions(this IGrainFactory grains, string userId) =>
        Get<IUserSessionsGrain>(grains, GrainTypeNames.UserSessions, userId);

    /// <summary>
    /// The grain of type <paramref name="grainType"/> with this key, called through interface <typeparamref name="T"/>,
    /// whose interface type is looked up once per process. Throws <see cref="ArgumentException"/> for an empty key.
    /// </summary>
    public static T Get<T>(IGrainFactory grains, string grainType, string key)
        where T : IGrainWithStringKey
    {
        ArgumentNullException.ThrowIfNull(grains);
        ArgumentException.ThrowIfNullOrWhiteSpace(grainType);
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        if (!InterfaceTypes.TryGetValue(typeof(T), out var interfaceType))
        {
            // The one slow lookup; the interface type comes from the interface's own attributes, the same everywhere.
            interfaceType = ((GrainReference)(object)grains.GetGrain<T>(key)).InterfaceType;
            InterfaceTypes.TryAdd(typeof(T), interfaceType);
        }

        return (T)grains.GetGrain(GrainId.Create(grainType, key), interfaceType);
    }
}

/// <summary>
/// The grain type names a frontend addresses: part of the wire and storage format (stored keys contain them).
/// The silo-only ones are in the grains' <c>SiloGrainTypeNames</c>.
/// </summary>
public static class GrainTypeNames
{
    /// <summary>The grain type of <see cref="ISessionGrain"/>: one grain per session, keyed by its public id.</summary>
    public const string Session = "sessiongrains.session";

    /// <summary>The grain type of <see cref="IUserSessionsGrain"/>: one index grain per user, keyed by the user id.</summary>
    public const string UserSessions = "sessiongrains.user-sessions";
}
