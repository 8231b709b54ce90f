using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SessionGrains.Silo;

/// <summary>
/// Writes the API's timestamps as UTC with milliseconds (<c>2026-12-02T10:15:30.123Z</c>). .NET's default has seven
/// fractional digits, which common parsers (JavaScript's <c>Date</c> among the forgiving ones, Go's and Python's
/// stricter ones) reject or misread. Reads any ISO 8601 form.
/// </summary>
internal sealed class MillisecondTimestampConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.GetDateTimeOffset();

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
}
