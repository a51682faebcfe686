using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace PushService.Broker.Redis.Subscriptions;

/// <summary>Subscribes through StackExchange.Redis's multiplexer, one <see cref="ChannelMessageQueue"/> per channel, read in order.</summary>
internal sealed partial class LibrarySubscriptionPath(RedisConnection connection, DeliverMessage deliver, RedisBrokerOptions options, ILogger logger) : ISubscriptionPath
{
    public bool IsConnected => true;

    public long Reconnects => 0;

    public async Task SubscribeAsync(ChannelFeed feed, string pubSubName)
    {
        if (!connection.IsConnected)
        {
            throw new BrokerUnavailableException("The Redis backplane is not connected.") { RetryAfter = options.BreakDuration };
        }

        var subscriber = (await connection.GetAsync()).GetSubscriber();
        var queue = await RedisFailures.GuardAsync(() => subscriber.SubscribeAsync(connection.PubSubChannel(pubSubName)).WaitAsync(options.OperationTimeout),
            options.BreakDuration);
        feed.Queue = queue;
        queue.OnMessage(message => deliver(feed, (ReadOnlyMemory<byte>)message.Message).AsTask());
    }

    public async Task UnsubscribeAsync(ChannelFeed feed, string pubSubName)
    {
        if (feed.Queue is not { } queue)
        {
            return;
        }

        try
        {
            await queue.UnsubscribeAsync();
        }
        catch (Exception ex) when (ex is RedisException or ObjectDisposedException)
        {
            // The multiplexer forgets the subscription either way; Redis drops it with the connection.
            Log.UnsubscribeFailed(logger, queue.Channel.ToString(), ex.Message);
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private static partial class Log
    {
        [LoggerMessage(1007, LogLevel.Debug, "Unsubscribing {Channel} failed: {Message}")]
        public static partial void UnsubscribeFailed(ILogger logger, string channel, string message);
    }
}
