namespace PushService.Broker;

/// <summary>
/// What a broker reports to the node's metrics: read when they are collected (a scrape, an export), never on the
/// publish or delivery path.
/// </summary>
public readonly record struct BrokerStatistics
{
    /// <summary>True while every backplane connection the broker needs is up.</summary>
    public bool Connected { get; init; }

    /// <summary>Times a backplane connection was made again after it had been lost, since the node started.</summary>
    public long Reconnects { get; init; }

    /// <summary>Publications delivered from history because pub/sub did not bring them (gap fills).</summary>
    public long GapFills { get; init; }

    /// <summary>Times a channel's continuity was lost and its subscribers were told to resubscribe.</summary>
    public long ContinuityResets { get; init; }

    /// <summary>Channels waiting for a gap fill or a catch-up from history now.</summary>
    public int ChannelsBehind { get; init; }

    /// <summary>The circuit breaker in front of the backplane.</summary>
    public BrokerCircuitState Circuit { get; init; }
}

/// <summary>The state of the broker's circuit breaker; the numbers are what the metric reports.</summary>
public enum BrokerCircuitState
{
    /// <summary>Calls go through.</summary>
    Closed = 0,

    /// <summary>Calls fail at once after repeated failures, until the break ends.</summary>
    Open = 1,

    /// <summary>A trial call decides whether the circuit closes again.</summary>
    HalfOpen = 2,

    /// <summary>Held open by hand.</summary>
    Isolated = 3,
}
