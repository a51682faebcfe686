using Microsoft.Extensions.Logging;
using PushService.Broker.Redis.Resp;

namespace PushService.Broker.Redis.Subscriptions;

/// <summary>
/// Subscribes on the broker's own RESP connection to one plain Redis server (<see cref="SubscriptionConnection"/>),
/// whose messages are delivered on the thread that read them from the socket.
/// </summary>
internal sealed class RespSubscriptionPath : ISubscriptionPath
{
    private readonly SubscriptionConnection _connection;
    private readonly Func<string, ChannelFeed?> _feedOf;
    private readonly DeliverMessage _deliver;

    /// <param name="server">The Redis server.</param>
    /// <param name="options">The broker's options (timeouts).</param>
    /// <param name="feedOf">The feed a Redis channel name belongs to; null when the node no longer wants it.</param>
    /// <param name="deliver">The broker's delivery.</param>
    /// <param name="wanted">The Redis channels the node wants, subscribed again after a reconnect.</param>
    /// <param name="restored">Called after a reconnect, once every wanted channel is subscribed again.</param>
    /// <param name="logger">Where the connection logs.</param>
    public RespSubscriptionPath(RespServer server, RedisBrokerOptions options, Func<string, ChannelFeed?> feedOf, DeliverMessage deliver,
        Func<IReadOnlyCollection<string>> wanted, Action restored, ILogger logger)
    {
        _feedOf = feedOf;
        _deliver = deliver;
        _connection = new SubscriptionConnection(server, options.OperationTimeout, options.BreakDuration, OnMessage, wanted, restored, logger);
    }

    public bool IsConnected => _connection.IsConnected;

    public long Reconnects => Math.Max(0, _connection.Connects - 1);

    /// <summary>How many times the connection was made, reconnections included.</summary>
    public int Connects => _connection.Connects;

    public Task StartAsync() => _connection.StartAsync();

    public Task SubscribeAsync(ChannelFeed feed, string pubSubName) => _connection.SubscribeAsync(pubSubName);

    public Task UnsubscribeAsync(ChannelFeed feed, string pubSubName) => _connection.UnsubscribeAsync(pubSubName);

    public ValueTask DisposeAsync() => _connection.DisposeAsync();

    /// <summary>A message read on the connection's reading thread: delivered there unless the channel's sequencer is busy
    /// (a gap fill), which then holds it. The payload is copied: the connection reads into the same buffer again.</summary>
    private void OnMessage(string pubSubName, ReadOnlyMemory<byte> payload)
    {
        if (_feedOf(pubSubName) is { } feed)
        {
            // Nearly always complete here: only a sequencer that just opened a gap goes on in the background.
            var delivery = _deliver(feed, payload.ToArray());
            if (!delivery.IsCompletedSuccessfully)
            {
                _ = delivery.AsTask();
            }
        }
    }
}
