using System.Text.Json;
using Orleans.Storage;

namespace SessionGrains;

/// <summary>
/// Stores grain state as System.Text.Json documents: readable with redis-cli, stable across type renames
/// (property names, not type names), and free of the token by construction (no state type has one).
/// </summary>
internal sealed class StorageJsonSerializer : IGrainStorageSerializer
{
    // Nulls, zero counters and empty values are left out: they read back as the same defaults, and a million
    // stored sessions (and their index entries) are that much smaller.
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault,
    };

    public BinaryData Serialize<T>(T? input) => BinaryData.FromObjectAsJson(input, Options);

    public T Deserialize<T>(BinaryData input) =>
        input.ToObjectFromJson<T>(Options) ?? throw new JsonException("Stored grain state was null.");
}
