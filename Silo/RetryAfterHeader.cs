using System.Globalization;

namespace SessionGrains.Silo;

/// <summary>The one place that writes <c>Retry-After</c>: whole seconds, at least one.</summary>
internal static class RetryAfterHeader
{
    public static void Set(HttpResponse response, TimeSpan retryAfter) =>
        response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
}
