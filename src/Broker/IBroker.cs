namespace PushService.Broker;

/// <summary>
/// The backplane seam. A node publishes through it, subscribes to channels it has local subscribers on
/// (once per channel, however many subscribers), and reads history. Publications on subscribed channels
/// come back through the <see cref="IBrokerEventHandler"/> given to <see cref="StartAsync"/>, in offset order per channel.
/// </summary>
public interface IBroker
{
    /// <summary>True while the backplane can take publications and deliver them.</summary>
    bool IsAvailable { get; }

    /// <summary>
    /// False while some subscribed channel is still reading back from history what it missed (after a backplane outage,
    /// say): the node is not ready for new traffic until every channel has caught up.
    /// </summary>
    bool IsCaughtUp { get; }

    /// <summary>Counts and states for the node's metrics.</summary>
    BrokerStatistics Statistics { get; }

    /// <summary>Starts delivering publications on subscribed channels to <paramref name="handler"/>.</summary>
    Task StartAsync(IBrokerEventHandler handler, CancellationToken cancellationToken);

    /// <summary>
    /// Stores the publication in the channel's history (where the options keep history), gives it the next offset
    /// and hands it to every node subscribed to the channel. Completing means it is stored and handed over.
    /// </summary>
    /// <exception cref="BrokerUnavailableException">The backplane cannot take it now.</exception>
    /// <exception cref="IdempotencyConflictException">The idempotency key was used with other data.</exception>
    ValueTask<PublishResult> PublishAsync(string channel, ReadOnlyMemory<byte> data, PublishOptions options, CancellationToken cancellationToken = default);

    /// <summary>
    /// Starts node-level delivery of the channel's publications. Completes once delivery is in place, with the
    /// channel's position read after that: every publication past it will be delivered.
    /// </summary>
    ValueTask<StreamPosition> SubscribeAsync(string channel, CancellationToken cancellationToken = default);

    /// <summary>Stops node-level delivery of the channel's publications.</summary>
    ValueTask UnsubscribeAsync(string channel, CancellationToken cancellationToken = default);

    /// <summary>Reads the channel's position and history.</summary>
    ValueTask<HistoryResult> HistoryAsync(string channel, HistoryQuery query, CancellationToken cancellationToken = default);

    /// <summary>Tells every node subscribed to the channel that a client joined or left it. Not stored, no offset.</summary>
    ValueTask PublishJoinLeaveAsync(string channel, PresenceEntry entry, bool join, CancellationToken cancellationToken = default);
}

/// <summary>Receives the publications a broker delivers to this node.</summary>
public interface IBrokerEventHandler
{
    /// <summary>Called once per publication on a subscribed channel, in offset order per channel.</summary>
    ValueTask HandlePublicationAsync(Publication publication);

    /// <summary>
    /// Called when the broker cannot guarantee that it delivered every publication on <paramref name="channel"/>
    /// (for example after the channel's stream lost its history); subscribers should recover from history.
    /// </summary>
    ValueTask HandleStreamResetAsync(string channel);

    /// <summary>Called when a client joined or left a subscribed channel, on any node.</summary>
    ValueTask HandleJoinLeaveAsync(string channel, PresenceEntry entry, bool join);
}

/// <summary>The backplane cannot serve the call now; retry later.</summary>
public sealed class BrokerUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public BrokerUnavailableException(string message, Exception? innerException = null) : base(message, innerException) { }

    /// <summary>Creates the exception.</summary>
    public BrokerUnavailableException() : base("The backplane is unavailable.") { }

    /// <summary>Creates the exception.</summary>
    public BrokerUnavailableException(string message) : base(message) { }

    /// <summary>How long a caller should wait before trying again.</summary>
    public TimeSpan RetryAfter { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>An idempotency key was used again within its window with different data.</summary>
public sealed class IdempotencyConflictException : Exception
{
    /// <summary>Creates the exception.</summary>
    public IdempotencyConflictException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public IdempotencyConflictException() : base("The idempotency key was used with different data.") { }

    /// <summary>Creates the exception.</summary>
    public IdempotencyConflictException(string message, Exception innerException) : base(message, innerException) { }
}
