using System.Threading.Channels;

namespace PushService.Client;

/// <summary>
/// A channel subscription that survives reconnects: after any gap, server-side unsubscribe or reconnect (to any node)
/// the client subscribes again with the last position it saw and the gateway sends what was missed.
/// </summary>
public sealed class PushSubscription
{
    private readonly Channel<ChannelEvent> _events = System.Threading.Channels.Channel.CreateUnbounded<ChannelEvent>();

    internal PushSubscription(string channel) => Channel = channel;

    /// <summary>The channel.</summary>
    public string Channel { get; }

    /// <summary>Messages in offset order, each once, across reconnects; plus resets, joins and leaves.</summary>
    public ChannelReader<ChannelEvent> Events => _events.Reader;

    /// <summary>The epoch of the last position seen.</summary>
    public string? Epoch { get; internal set; }

    /// <summary>The last offset seen.</summary>
    public long Offset { get; internal set; }

    /// <summary>How many times the subscription recovered missed messages after a reconnect or gap.</summary>
    public int Recoveries { get; internal set; }

    /// <summary>True while the server has the subscription in place.</summary>
    public bool IsActive { get; internal set; }

    internal bool Removed { get; set; }

    /// <summary>Serializes every (re)subscribe of this subscription, so two never race on the server.</summary>
    internal SemaphoreSlim Gate { get; } = new(1, 1);

    internal void Emit(ChannelEvent channelEvent) => _events.Writer.TryWrite(channelEvent);

    internal void Complete() => _events.Writer.TryComplete();
}
