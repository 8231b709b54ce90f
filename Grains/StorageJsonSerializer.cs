using System.Text.Json;
using Orleans.Storage;

namespace SessionGrains;

/// <summary>
/// Stores grain state as System.Text.Json documents: readable with redis-cli, stable across type renames
/// (property names, not type names), and free of the token by construction (no state type has one).
/// </summary>
internal sealed class StorageJsonSerializer : IGrainStorageSerializer
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    public BinaryData Serialize<T>(T? input) => BinaryData.FromObjectAsJson(input, Options);

    public T Deserialize<T>(BinaryData input) =>
        input.ToObjectFromJson<T>(Options) ?? throw new JsonException("Stored grain state was null.");
}
