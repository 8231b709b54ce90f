namespace SessionGrains;

/// <summary>
/// Whether this silo is stopping as the last one of its cluster. Then no grain can be placed anywhere: a
/// message to one that is not active (a user index, an in-memory storage grain) makes Orleans retry its
/// placement and log every attempt, and the in-memory store, itself made of grains, ends with the silo. Work
/// on the way out that needs either is skipped rather than attempted and logged as failed, so a silo stopping
/// with active sessions does not flood its log with errors about work that could not succeed.
/// </summary>
internal sealed class LastSiloShutdown(IClusterMembershipService membership, ILocalSiloDetails silo)
{
    public bool IsUnderWay
    {
        get
        {
            var snapshot = membership.CurrentSnapshot;
            return snapshot.GetSiloStatus(silo.SiloAddress) is SiloStatus.ShuttingDown or SiloStatus.Stopping or SiloStatus.Dead
                && !snapshot.Members.Values.Any(m => m.Status == SiloStatus.Active && !m.SiloAddress.Equals(silo.SiloAddress));
        }
    }
}
