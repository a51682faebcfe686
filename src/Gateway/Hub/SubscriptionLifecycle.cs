using PushService.Broker;
using PushService.Gateway.Configuration;

namespace PushService.Gateway.Hub;

/// <summary>
/// The one owner of a subscription's life, from a client's subscribe (or a token's server-side channels) to its end by
/// the client, by the server (a token expired, a channel's continuity lost) or by the connection closing. Every change
/// to a connection's <see cref="Subscriber.Subscriptions"/> and to the hub's channel membership goes through here,
/// in the one order that keeps delivery gap-free: registered and pending, added to its channel, position (and history)
/// read, the reply queued, then live with what arrived meanwhile. The command handler authorises and encodes.
/// </summary>
internal sealed class SubscriptionLifecycle
{
    private readonly LocalHub _hub;
    private readonly IBroker _broker;

    public SubscriptionLifecycle(LocalHub hub, IBroker broker)
    {
        _hub = hub;
        _broker = broker;
    }

    /// <summary>
    /// Starts a pending subscription: registered on the connection, added to its channel (taking the broker subscription
    /// if it is the first here), and the position read, with what was missed since <paramref name="since"/>. Pushes wait
    /// until <see cref="ActivateAsync"/>. On failure nothing of it is left behind.
    /// </summary>
    /// <exception cref="BrokerUnavailableException">The backplane is down.</exception>
    public async ValueTask<(Subscription Subscription, HistoryResult History)> StartAsync(Subscriber connection, string channel,
        NamespaceOptions ns, StreamPosition? since, long expiresAtTicks)
    {
        var subscription = new Subscription(connection, channel) { Namespace = ns, ExpiresAtTicks = expiresAtTicks };
        connection.Subscriptions.Set(subscription);
        if (expiresAtTicks != 0)
        {
            connection.HasExpiringSubscriptions = true;
        }

        try
        {
            var taken = await _hub.AddAsync(subscription, CancellationToken.None);
            var history = (since, taken) switch
            {
                (null, { } position) => new HistoryResult(position, []),
                ({ } s, _) => await _broker.HistoryAsync(channel, new HistoryQuery { Since = s }),
                _ => await _broker.HistoryAsync(channel, new HistoryQuery { Limit = 0 }),
            };
            return (subscription, history);
        }
        catch
        {
            connection.Subscriptions.TryRemove(subscription);
            await _hub.RemoveAsync(subscription);
            throw;
        }
    }

    /// <summary>
    /// Makes a started subscription live once what must precede its pushes is queued: <paramref name="reply"/> (when
    /// given) then what arrived after <paramref name="position"/> while it was pending; then announces the join.
    /// </summary>
    public async ValueTask ActivateAsync(Subscription subscription, StreamPosition position, byte[]? reply)
    {
        subscription.Activate(position, reply);
        await _hub.JoinedAsync(subscription);
    }

    /// <summary>Ends the connection's subscription to <paramref name="channel"/> at the client's request; nothing when it has none.</summary>
    public async ValueTask EndAsync(Subscriber connection, string channel)
    {
        if (connection.Subscriptions.TryRemove(channel, out var subscription))
        {
            await _hub.RemoveAsync(subscription);
        }
    }

    /// <summary>
    /// Ends a subscription on the server's initiative and tells the client with <paramref name="push"/> (its SDK
    /// subscribes again with recovery); nothing when it already ended.
    /// </summary>
    public void EndByServer(Subscription subscription, byte[] push)
    {
        if (subscription.Connection.Subscriptions.TryRemove(subscription))
        {
            subscription.Connection.Outbox.SendControl(push);
            _ = _hub.RemoveAsync(subscription).AsTask();
        }
    }

    /// <summary>Ends every subscription of a connection that closed.</summary>
    public async ValueTask EndAllAsync(Subscriber connection)
    {
        foreach (var subscription in connection.Subscriptions.TakeAll())
        {
            await _hub.RemoveAsync(subscription);
        }
    }
}
