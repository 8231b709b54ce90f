namespace SessionGrains;

/// <summary>How grain state is laid out in Redis (docs/storage.md).</summary>
public enum RedisStorageFormat
{
    /// <summary>
    /// One Redis string per record under a short key (<c>{serviceId}/s/{sessionId}</c>): an 8-byte etag, then the
    /// compact binary state. A new session is one <c>SET NX PX</c>; a change is a compare-and-set script.
    /// Records of the legacy format are read, and rewritten in this one on their next change.
    /// </summary>
    Compact,

    /// <summary>
    /// The format of earlier builds: Orleans' Redis provider (a hash of etag and JSON data under
    /// <c>{serviceId}/state/{grainId}</c>). Set it on the new silos while a rolling upgrade from such a build runs,
    /// so the old silos can read every record; then remove it in a second roll. Records already in the compact
    /// format are read and kept in it.
    /// </summary>
    Legacy,
}
