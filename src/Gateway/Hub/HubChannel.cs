namespace PushService.Gateway.Hub;

/// <summary>
/// The local subscribers of one channel. Fan-out reads <see cref="Subscribers"/> without a lock; changes and the
/// broker subscription they imply go through <see cref="Gate"/>.
/// </summary>
internal sealed class HubChannel
{
    public HubChannel(string name) => Name = name;

    public string Name { get; }

    public SemaphoreSlim Gate { get; } = new(1, 1);

    public SubscriberSet Subscribers { get; } = new();

    /// <summary>True once the node holds a broker subscription for this channel.</summary>
    public bool BrokerSubscribed { get; set; }

    /// <summary>True once dropped from the hub; a caller holding it must look the channel up again.</summary>
    public bool Removed { get; set; }

    /// <summary>
    /// When the last local subscriber left (<see cref="TimeProvider.GetTimestamp"/>) while the broker subscription stays
    /// for the unsubscribe delay; 0 while the channel has subscribers or is not lingering.
    /// </summary>
    public long EmptySince { get; set; }
}
