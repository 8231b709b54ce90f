using Orleans.Concurrency;

namespace SessionGrains;

/// <summary>
/// The sessions due for an expiry check in one time bucket (one shard of it). It holds one reminder for
/// all of them, so the reminder table grows with the number of buckets, not with the number of sessions.
/// Keyed <c>{due time, Unix seconds}/{shard}</c>; see <see cref="SessionExpiryBuckets"/>.
/// </summary>
[Alias("sessiongrains.expiry-bucket")]
internal interface ISessionExpiryBucketGrain : IGrainWithStringKey
{
    /// <summary>Files a session to be checked when the bucket is due (one-way: expiry never waits on it).</summary>
    [Alias("add"), OneWay]
    Task AddAsync(string sessionId);
}
