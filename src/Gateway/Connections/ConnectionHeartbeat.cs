using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using PushService.Gateway.Configuration;
using PushService.Gateway.Hub;
using PushService.Gateway.Protocol;

namespace PushService.Gateway.Connections;

/// <summary>
/// One timer for every connection (as Kestrel's heartbeat): connect timeouts, server pings, pong timeouts, and
/// aborting connections whose close handshake takes too long. A timer per connection would cost memory and
/// wake-ups that grow with the connection count.
/// </summary>
internal sealed class ConnectionHeartbeat : BackgroundService
{
    private readonly ConnectionRegistry _connections;
    private readonly SubscriptionLifecycle _subscriptions;
    private readonly TimeProvider _time;
    private readonly PushServiceOptions _options;

    public ConnectionHeartbeat(ConnectionRegistry connections, LocalHub hub, TimeProvider time, IOptions<PushServiceOptions> options)
    {
        _connections = connections;
        _subscriptions = hub.Subscriptions;
        _time = time;
        _options = options.Value;
    }

    /// <summary>How often the heartbeat looks at the connections.</summary>
    internal static TimeSpan Period { get; set; } = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Period, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                Tick(_time.GetUtcNow().UtcTicks);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    internal void Tick(long now)
    {
        var connectTimeout = _options.Limits.ConnectTimeout.Ticks;
        var closeTimeout = _options.Limits.CloseTimeout.Ticks;
        var pingInterval = _options.WebSocket.PingInterval.Ticks;
        var pongTimeout = _options.WebSocket.PongTimeout.Ticks;
        foreach (var connection in _connections.All)
        {
            if (connection.IsClosing)
            {
                if (now - connection.CloseRequestedAtTicks > closeTimeout)
                {
                    connection.Abort();
                }

                continue;
            }

            if (!connection.IsConnected)
            {
                if (now - connection.OpenedAtTicks > connectTimeout)
                {
                    connection.RequestClose(Disconnect.Unauthorized);
                }

                continue;
            }

            connection.ReplenishCommands();
            var expires = connection.TokenExpiresAtTicks;
            if (expires != 0 && now > expires)
            {
                connection.RequestClose(Disconnect.TokenExpired);
                continue;
            }

            if (connection.HasExpiringSubscriptions)
            {
                ExpireSubscriptions(connection, now);
            }

            var pingSent = connection.PingSentAtTicks;
            if (pingSent != 0 && connection.LastActivityTicks < pingSent)
            {
                if (now - pingSent > pongTimeout)
                {
                    connection.RequestClose(Disconnect.NoPong);
                }

                continue;
            }

            // Connections opened together (a reconnect wave after a deploy or a lost node) would otherwise be pinged in
            // the same tick every interval, each time a burst of frames out and of pongs in that delays deliveries on
            // the node. The first ping comes up to half an interval early, and later ones an interval after it.
            var countedFrom = pingSent != 0 ? pingSent : connection.OpenedAtTicks - (long)(pingInterval / 2 * connection.FirstPingLead);
            if (now - countedFrom >= pingInterval)
            {
                connection.SendPing();
            }
        }
    }

    private void ExpireSubscriptions(ClientConnection connection, long now)
    {
        foreach (var subscription in connection.Subscriptions.Snapshot())
        {
            if (subscription.ExpiresAtTicks != 0 && now > subscription.ExpiresAtTicks)
            {
                // The client subscribes again with a fresh subscription token (and since, so it misses nothing).
                _subscriptions.EndByServer(subscription, FrameEncoder.UnsubscribedPush(subscription.Channel, "token_expired"));
            }
        }
    }
}
