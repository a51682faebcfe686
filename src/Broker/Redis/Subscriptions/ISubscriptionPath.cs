namespace PushService.Broker.Redis.Subscriptions;

/// <summary>
/// How this node's Redis subscriptions are made and read, chosen once when the broker starts: through
/// StackExchange.Redis (<see cref="LibrarySubscriptionPath"/>) or on the broker's own RESP connection, read on the
/// socket's thread (<see cref="RespSubscriptionPath"/>). Either hands every message of a channel to the broker's
/// delivery, which gives it to the channel's sequencer; ordering and gap filling are the sequencer's, whatever the path.
/// </summary>
internal interface ISubscriptionPath : IAsyncDisposable
{
    /// <summary>True while the path's own connection is up (the library's are the broker's concern).</summary>
    bool IsConnected { get; }

    /// <summary>How many times the path's own connection was made again after being lost.</summary>
    long Reconnects { get; }

    /// <summary>Subscribes <paramref name="feed"/> to <paramref name="pubSubName"/>; returns once Redis confirmed it.</summary>
    /// <exception cref="BrokerUnavailableException">Redis is away or did not answer in time.</exception>
    Task SubscribeAsync(ChannelFeed feed, string pubSubName);

    /// <summary>Drops the subscription; a connection that is down has none to drop.</summary>
    Task UnsubscribeAsync(ChannelFeed feed, string pubSubName);
}

/// <summary>The broker's delivery of one message read for <paramref name="feed"/>'s channel.</summary>
internal delegate ValueTask DeliverMessage(ChannelFeed feed, ReadOnlyMemory<byte> payload);
