using StackExchange.Redis;

namespace PushService.Broker.Redis;

/// <summary>
/// One subscribed channel on this node: its Redis subscription and the last position the node delivered. All delivery
/// for the channel goes through <see cref="Gate"/>, so live publications, gap fills and resyncs after a reconnect are
/// delivered in offset order, once each.
/// </summary>
internal sealed class ChannelFeed
{
    public ChannelFeed(string channel) => Channel = channel;

    public string Channel { get; }

    public SemaphoreSlim Gate { get; } = new(1, 1);

    public ChannelMessageQueue? Queue { get; set; }

    /// <summary>The last position delivered to the node; null until the subscription is in place.</summary>
    public StreamPosition? Last { get; set; }

    /// <summary>Set when the node unsubscribed; nothing more is delivered.</summary>
    public volatile bool Closed;
}
