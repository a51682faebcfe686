namespace PushService.Gateway.Hub;

/// <summary>
/// What the hub needs of a connection that subscribes: who it is, its subscriptions (which only
/// <see cref="SubscriptionLifecycle"/> changes), and its outbound queue (<see cref="Outbox"/>). Connections' client sessions are subscribers.
/// </summary>
/// <remarks>
/// Base classes rather than interfaces because fan-out queues to every subscriber of every publication: a virtual call
/// is a load and a jump where an interface call goes through a dispatch stub, and the gateway runs without dynamic PGO,
/// which would otherwise devirtualise either. For the same reason a subscription holds its subscriber's
/// <see cref="Outbox"/> itself, and who the subscriber is and its subscriptions are plain fields here.
/// </remarks>
internal abstract class Subscriber(string id)
{
    private bool _hasExpiringSubscriptions;

    public string Id { get; } = id;

    /// <summary>The user id from the connection token; empty for anonymous clients.</summary>
    public string UserId { get; protected set; } = "";

    /// <summary>The subscriptions by channel; changed by <see cref="SubscriptionLifecycle"/> only.</summary>
    public SubscriptionSet Subscriptions { get; } = new();

    /// <summary>
    /// True once a subscription with an expiring token was added: only then does the heartbeat walk the subscriptions
    /// (walking them copies them, every second, for every connection).
    /// </summary>
    public bool HasExpiringSubscriptions
    {
        get => Volatile.Read(ref _hasExpiringSubscriptions);
        set => Volatile.Write(ref _hasExpiringSubscriptions, value);
    }

    /// <summary>Where the subscriber's pushes and replies are queued; the same object for as long as the subscriber lives.</summary>
    public abstract Outbox Outbox { get; }
}

/// <summary>A subscriber's outbound queue, as the hub sees it: Connections' writer.</summary>
internal abstract class Outbox
{
    /// <summary>Queues a push shared with other subscribers; <paramref name="acceptedAtTicks"/> is its publication's accepted time (UTC ticks), 0 for none.</summary>
    public abstract void Send(ReadOnlyMemory<byte> frame, long acceptedAtTicks = 0);

    /// <summary>Queues a control push (unsubscribed) that never trips the queue's bound.</summary>
    public abstract void SendControl(ReadOnlyMemory<byte> frame);

    /// <summary>Queues a reply, to be sent by the next <see cref="FlushNow"/>.</summary>
    public abstract void EnqueueReply(ReadOnlyMemory<byte> frame);

    /// <summary>Sends what is queued from this thread, unless a flush is already on its way.</summary>
    public abstract void FlushNow();
}
