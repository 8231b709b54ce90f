namespace SessionGrains;

/// <summary>Names of the grain storage providers SessionGrains uses. Defined once, used everywhere.</summary>
public static class StorageNames
{
    /// <summary>Session grain state (one entry per session).</summary>
    public const string Sessions = "SessionGrains.Sessions";

    /// <summary>User index and counter grain state.</summary>
    public const string UserIndex = "SessionGrains.UserIndex";
}
