using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using PushService.Broker;
using Microsoft.Extensions.Options;
using PushService.Gateway.Configuration;
using PushService.Gateway.Protocol;
using PushService.Gateway.Telemetry;

namespace PushService.Gateway.Hub;

/// <summary>
/// This node's subscriptions, channel by channel. Holds one broker subscription per channel with local
/// subscribers (taken by the first, released once the last has been gone for <see cref="ClusterOptions.UnsubscribeDelay"/>),
/// and fans each publication out: encoded once, the same bytes queued to every local subscriber. A subscription's start
/// and end are <see cref="SubscriptionLifecycle"/>'s, presence and join/leave <see cref="ChannelPresence"/>'s. The
/// connections themselves are Connections' to hold.
/// </summary>
public sealed partial class LocalHub : IBrokerEventHandler
{
    private readonly ConcurrentDictionary<string, HubChannel> _channels = new(StringComparer.Ordinal);
    private readonly IBroker _broker;
    private readonly ChannelPresence _presence;
    private readonly PushMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger<LocalHub> _logger;
    private readonly string _nodeId;
    private int _subscriptionCount;

    /// <summary>Creates the hub.</summary>
    public LocalHub(IBroker broker, IPresenceStore presence, IOptions<PushServiceOptions> options, PushMetrics metrics, TimeProvider time,
        NodeIdentity node, ILogger<LocalHub> logger)
    {
        _nodeId = node.Id;
        Subscriptions = new SubscriptionLifecycle(this, broker);
        _broker = broker;
        _presence = new ChannelPresence(presence, broker, options.Value.Presence, logger);
        UnsubscribeDelay = options.Value.Cluster.UnsubscribeDelay;
        _metrics = metrics;
        _time = time;
        _logger = logger;
        NodeGauges.Register(metrics.Meter, this, broker);
    }

    /// <summary>How long a channel with no local subscriber keeps its broker subscription.</summary>
    internal TimeSpan UnsubscribeDelay { get; }

    /// <summary>Where every subscription starts and ends.</summary>
    internal SubscriptionLifecycle Subscriptions { get; }

    /// <summary>Channels this node holds a broker subscription for (read for metrics: it takes every bucket's lock).</summary>
    public int ChannelCount => _channels.Count;

    /// <summary>Subscriptions of all connections on this node.</summary>
    public int SubscriptionCount => Volatile.Read(ref _subscriptionCount);

    /// <summary>Channels with local subscribers and how many each has.</summary>
    public IEnumerable<(string Channel, int Subscribers)> ChannelSubscribers()
    {
        foreach (var (name, channel) in _channels)
        {
            var count = channel.Subscribers.Count;
            if (count > 0)
            {
                yield return (name, count);
            }
        }
    }

    /// <summary>
    /// Adds a pending subscription, taking the broker subscription when it is the channel's first. Then returns the
    /// position the broker read once delivery was in place, which serves as the subscription's own (it was already
    /// among the channel's subscribers, so it gets everything past it); otherwise null, and the caller reads one.
    /// </summary>
    internal async ValueTask<StreamPosition?> AddAsync(Subscription subscription, CancellationToken cancellationToken)
    {
        while (true)
        {
            var channel = _channels.GetOrAdd(subscription.Channel, static name => new HubChannel(name));
            await channel.Gate.WaitAsync(cancellationToken);
            try
            {
                if (channel.Removed)
                {
                    continue;
                }

                // Among the subscribers before the broker subscribes, so the pending subscription buffers whatever the
                // broker delivers after the position it reads: one Redis round trip fewer for a channel's first subscriber.
                channel.Subscribers.Add(subscription);
                StreamPosition? position = null;
                if (!channel.BrokerSubscribed)
                {
                    try
                    {
                        position = await _broker.SubscribeAsync(channel.Name, cancellationToken);
                    }
                    catch
                    {
                        channel.Subscribers.Remove(subscription);
                        if (channel.Subscribers.Count == 0)
                        {
                            channel.Removed = true;
                            _channels.TryRemove(new KeyValuePair<string, HubChannel>(channel.Name, channel));
                        }

                        throw;
                    }

                    channel.BrokerSubscribed = true;
                }

                channel.EmptySince = 0;
                Interlocked.Increment(ref _subscriptionCount);
                _metrics.SubscriptionAdded();
                return position;
            }
            finally
            {
                channel.Gate.Release();
            }
        }
    }

    /// <summary>
    /// Announces a subscription once its reply went out (presence and join where the namespace wants them), so every
    /// live subscriber, the new one included, sees the join after its own subscribe result.
    /// </summary>
    internal ValueTask JoinedAsync(Subscription subscription) => _presence.AnnounceAsync(subscription, join: true);

    /// <summary>Refreshes the presence entries of every local subscriber in a namespace with presence.</summary>
    internal Task RefreshPresenceAsync(CancellationToken cancellationToken) => _presence.RefreshAsync(AllSubscriptions(), cancellationToken);

    private IEnumerable<Subscription> AllSubscriptions()
    {
        foreach (var (_, channel) in _channels)
        {
            foreach (var subscription in channel.Subscribers)
            {
                yield return subscription;
            }
        }
    }

    /// <summary>Removes a subscription, releasing the broker subscription when it was the channel's last.</summary>
    internal async ValueTask RemoveAsync(Subscription subscription)
    {
        if (!_channels.TryGetValue(subscription.Channel, out var channel))
        {
            return;
        }

        var removed = false;
        await channel.Gate.WaitAsync(CancellationToken.None);
        try
        {
            if (!channel.Subscribers.Remove(subscription))
            {
                return;
            }

            removed = true;
            Interlocked.Decrement(ref _subscriptionCount);
            _metrics.SubscriptionRemoved();
            if (channel.Subscribers.Count > 0)
            {
                return;
            }

            if (UnsubscribeDelay > TimeSpan.Zero && channel.BrokerSubscribed)
            {
                // Left for ReleaseIdleChannelsAsync: a subscriber that comes back meanwhile finds the subscription standing.
                channel.EmptySince = _time.GetTimestamp();
                return;
            }

            await ReleaseAsync(channel);
        }
        finally
        {
            channel.Gate.Release();
            if (removed)
            {
                await _presence.AnnounceAsync(subscription, join: false);
            }
        }
    }

    /// <summary>
    /// Releases the broker subscriptions of channels whose last local subscriber left at least
    /// <see cref="UnsubscribeDelay"/> ago; the number released.
    /// </summary>
    internal async Task<int> ReleaseIdleChannelsAsync()
    {
        var released = 0;
        foreach (var (_, channel) in _channels)
        {
            if (!IsIdleLongEnough(channel))
            {
                continue;
            }

            await channel.Gate.WaitAsync(CancellationToken.None);
            try
            {
                if (!channel.Removed && channel.Subscribers.Count == 0 && IsIdleLongEnough(channel))
                {
                    await ReleaseAsync(channel);
                    released++;
                }
            }
            finally
            {
                channel.Gate.Release();
            }
        }

        return released;

        bool IsIdleLongEnough(HubChannel channel) =>
            channel.EmptySince != 0 && _time.GetElapsedTime(channel.EmptySince) >= UnsubscribeDelay;
    }

    /// <summary>Drops a channel with no subscribers and its broker subscription; the caller holds its gate.</summary>
    private async ValueTask ReleaseAsync(HubChannel channel)
    {
        // The broker subscription goes before the channel leaves the map: a new first subscriber waits on this gate,
        // sees Removed, and only then subscribes the broker again, never while the old subscription still stands.
        channel.Removed = true;
        if (channel.BrokerSubscribed)
        {
            try
            {
                await _broker.UnsubscribeAsync(channel.Name, CancellationToken.None);
            }
            catch (Exception ex)
            {
                // The broker keeps its own view of what the node wants and reconciles it when it reconnects.
                Log.BrokerUnsubscribeFailed(_logger, channel.Name, ex);
            }
        }

        _channels.TryRemove(new KeyValuePair<string, HubChannel>(channel.Name, channel));
    }

    /// <inheritdoc />
    public ValueTask HandlePublicationAsync(Publication publication)
    {
        if (!_channels.TryGetValue(publication.Channel, out var channel))
        {
            return ValueTask.CompletedTask;
        }

        if (channel.Subscribers.Count == 0)
        {
            return ValueTask.CompletedTask;
        }

        // Only a publication that was traced gets a delivery span, and only while something listens (an exporter).
        using var activity = publication.TraceParent is { } parent && PushTelemetry.Source.HasListeners() ? StartDelivery(publication, parent) : null;
        var frame = FrameEncoder.Message(publication);
        var delivered = 0;
        foreach (var subscriber in channel.Subscribers)
        {
            subscriber.Deliver(publication, frame);
            delivered++;
        }

        _metrics.Delivered(delivered);
        activity?.SetTag("pushservice.subscribers", delivered);
        return ValueTask.CompletedTask;
    }

    /// <summary>This node's delivery span of <paramref name="publication"/>, a child of the publisher's span.</summary>
    private Activity? StartDelivery(Publication publication, string traceParent)
    {
        if (!ActivityContext.TryParse(traceParent, traceState: null, isRemote: true, out var parent))
        {
            return null;
        }

        var activity = PushTelemetry.Source.StartActivity(PushTelemetry.DeliverSpan, ActivityKind.Consumer, parent);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("messaging.system", PushTelemetry.MessagingSystem);
            activity.SetTag("messaging.operation.type", "process");
            activity.SetTag("messaging.destination.name", publication.Channel);
            activity.SetTag("pushservice.offset", publication.Offset);
            activity.SetTag(PushTelemetry.NodeTag, _nodeId);
            if (publication.AcceptedAtTicks > 0)
            {
                // How long the publication took to reach this node: the backplane's share of the fan-out latency.
                activity.SetTag("pushservice.delivery.lag_ms", Math.Max(0, (_time.GetUtcNow().UtcTicks - publication.AcceptedAtTicks) / (double)TimeSpan.TicksPerMillisecond));
            }
        }

        return activity;
    }

    /// <inheritdoc />
    public ValueTask HandleStreamResetAsync(string channel)
    {
        if (_channels.TryGetValue(channel, out var hubChannel))
        {
            // The node cannot vouch for continuity: tell each subscriber, whose SDK resubscribes with recovery.
            var frame = FrameEncoder.UnsubscribedPush(channel, "resubscribe");
            foreach (var subscriber in hubChannel.Subscribers)
            {
                Subscriptions.EndByServer(subscriber, frame);
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask HandleJoinLeaveAsync(string channel, PresenceEntry entry, bool join)
    {
        if (_channels.TryGetValue(channel, out var hubChannel) && hubChannel.Subscribers.Count > 0)
        {
            var frame = FrameEncoder.JoinLeavePush(join, channel, entry.Client, entry.User);
            foreach (var subscriber in hubChannel.Subscribers)
            {
                if (subscriber.IsLive && subscriber.Namespace.JoinLeave)
                {
                    subscriber.Connection.Outbox.Send(frame);
                }
            }
        }

        return ValueTask.CompletedTask;
    }

    private static partial class Log
    {
        [LoggerMessage(100, LogLevel.Warning, "Releasing the broker subscription of channel '{Channel}' failed.")]
        public static partial void BrokerUnsubscribeFailed(ILogger logger, string channel, Exception exception);
    }
}
