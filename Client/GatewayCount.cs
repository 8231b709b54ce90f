namespace SessionGrains;

/// <summary>
/// How many silos a frontend's Orleans client is connected to, as Orleans reports it. Validation batching
/// (<see cref="ValidationBatcher"/>) pays only while that is one: a batch goes to one gateway silo, and with
/// more silos most of its sessions live elsewhere, so the gateway re-sends them one by one, which costs more
/// than the messages the batch saved (README, "Performance").
/// </summary>
internal sealed class GatewayCount : IClusterConnectionStatusObserver
{
    private volatile int _connected;

    /// <summary>True while the client is connected to exactly one silo.</summary>
    public bool IsOne => _connected == 1;

    public void NotifyGatewayCountChanged(int currentNumberOfGateways, int previousNumberOfGateways, bool connectionRecovered) =>
        _connected = currentNumberOfGateways;

    public void NotifyClusterConnectionLost() => _connected = 0;
}
