namespace SessionGrains;

/// <summary>FNV-1a over a string's chars: the same in every process (string.GetHashCode is randomized per process), for shard choices.</summary>
internal static class StableHash
{
    public static uint Of(string value)
    {
        var hash = 2166136261u;
        foreach (var c in value)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return hash;
    }
}
