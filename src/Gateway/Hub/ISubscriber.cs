using System.Collections.Concurrent;

namespace PushService.Gateway.Hub;

/// <summary>
/// What the hub needs of a connection that subscribes: who it is, its subscriptions (which only
/// <see cref="SubscriptionLifecycle"/> changes), and its outbound queue. Connections' client sessions are subscribers.
/// </summary>
internal interface ISubscriber
{
    string Id { get; }

    /// <summary>The user id from the connection token; empty for anonymous clients.</summary>
    string UserId { get; }

    /// <summary>The subscriptions by channel.</summary>
    ConcurrentDictionary<string, Subscription> Subscriptions { get; }

    /// <summary>Set once a subscription with an expiring token was added, so the heartbeat looks for expired ones.</summary>
    bool HasExpiringSubscriptions { get; set; }

    /// <summary>Queues a push shared with other subscribers; <paramref name="acceptedAtTicks"/> is its publication's accepted time (UTC ticks), 0 for none.</summary>
    void Send(ReadOnlyMemory<byte> frame, long acceptedAtTicks = 0);

    /// <summary>Queues a control push (unsubscribed) that never trips the queue's bound.</summary>
    void SendControl(ReadOnlyMemory<byte> frame);

    /// <summary>Queues a reply, to be sent by the next <see cref="FlushNow"/>.</summary>
    void EnqueueReply(ReadOnlyMemory<byte> frame);

    /// <summary>Sends what is queued from this thread, unless a flush is already on its way.</summary>
    void FlushNow();
}
