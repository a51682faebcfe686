using System.Diagnostics.Metrics;

namespace PushService.Gateway.Telemetry;

/// <summary>
/// The gateway's metrics. Delivery is counted once per publication with the number of local subscribers,
/// never once per subscriber, so the hot path pays one counter update per fan-out.
/// </summary>
public sealed class PushMetrics
{
    private readonly Counter<long> _published;
    private readonly Counter<long> _delivered;
    private readonly UpDownCounter<long> _connections;
    private readonly UpDownCounter<long> _subscriptions;
    private readonly Counter<long> _disconnects;
    private readonly Counter<long> _recoveries;

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/>.</summary>
    public PushMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(PushTelemetry.Name);
        _published = meter.CreateCounter<long>("pushservice.publications", "{publication}", "Publications accepted by this node.");
        _delivered = meter.CreateCounter<long>("pushservice.deliveries", "{delivery}", "Message pushes queued to local subscribers.");
        _connections = meter.CreateUpDownCounter<long>("pushservice.connections", "{connection}", "Open WebSocket connections.");
        _subscriptions = meter.CreateUpDownCounter<long>("pushservice.subscriptions", "{subscription}", "Channel subscriptions of local connections.");
        _disconnects = meter.CreateCounter<long>("pushservice.disconnects", "{disconnect}", "Connections closed by the server, by close code.");
        _recoveries = meter.CreateCounter<long>("pushservice.recoveries", "{recovery}", "Subscribes with 'since', by whether everything missed was recovered.");
    }

    /// <summary>A publication was accepted.</summary>
    public void Published() => _published.Add(1);

    /// <summary>A publication was queued to <paramref name="subscribers"/> local subscribers.</summary>
    public void Delivered(int subscribers) => _delivered.Add(subscribers);

    /// <summary>A connection opened.</summary>
    public void ConnectionOpened() => _connections.Add(1);

    /// <summary>A connection closed.</summary>
    public void ConnectionClosed() => _connections.Add(-1);

    /// <summary>A subscription was added.</summary>
    public void SubscriptionAdded() => _subscriptions.Add(1);

    /// <summary>A subscription was removed.</summary>
    public void SubscriptionRemoved() => _subscriptions.Add(-1);

    /// <summary>The server closed a connection with <paramref name="code"/>.</summary>
    public void Disconnected(int code) => _disconnects.Add(1, new KeyValuePair<string, object?>("code", code));

    /// <summary>A subscribe with 'since' was answered.</summary>
    public void Recovered(bool complete) => _recoveries.Add(1, new KeyValuePair<string, object?>("recovered", complete));
}
