using PushService.Broker.Sequencing;
using StackExchange.Redis;

namespace PushService.Broker.Redis;

/// <summary>
/// One subscribed channel on this node: its Redis subscription and the sequencer that delivers its publications in
/// offset order, once each, whether they come live, from a gap fill or from a catch-up after a reconnect.
/// </summary>
internal sealed class ChannelFeed(ChannelSequencer sequencer)
{
    public ChannelSequencer Sequencer { get; } = sequencer;

    /// <summary>The library's subscription, where pub/sub is read through StackExchange.Redis.</summary>
    public ChannelMessageQueue? Queue { get; set; }
}
