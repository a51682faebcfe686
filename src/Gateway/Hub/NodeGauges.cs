using System.Diagnostics.Metrics;
using PushService.Broker;

namespace PushService.Gateway.Hub;

/// <summary>
/// The node's states as observable instruments on the gateway's meter: the hub's channels and its connections' queues,
/// and the broker's state. Read when metrics are collected (a scrape, an export), so they cost the hot path nothing.
/// The hub registers them when it is made, as the send scheduler does its own.
/// </summary>
internal static class NodeGauges
{
    public static void Register(Meter meter, LocalHub hub, IBroker broker)
    {
        meter.CreateObservableUpDownCounter("pushservice.channels", () => hub.ChannelCount, "{channel}",
            "Channels with local subscribers, each one backplane subscription.");
        meter.CreateObservableUpDownCounter("pushservice.outbound.depth", () => Outbound(hub).Frames, "{frame}",
            "Frames queued for client sockets and not yet written, over all connections.");
        meter.CreateObservableUpDownCounter("pushservice.outbound.size", () => Outbound(hub).Bytes, "By",
            "Bytes queued for client sockets and not yet written, over all connections.");
        meter.CreateObservableGauge("pushservice.outbound.depth.max", () => Outbound(hub).Deepest, "{frame}",
            "The deepest outbound queue of any one connection.");
        meter.CreateObservableGauge("pushservice.broker.connected", () => broker.Statistics.Connected ? 1 : 0, "1",
            "1 while every backplane connection is up, else 0.");
        meter.CreateObservableCounter("pushservice.broker.reconnects", () => broker.Statistics.Reconnects, "{reconnect}",
            "Backplane connections made again after being lost.");
        meter.CreateObservableGauge("pushservice.broker.circuit_state", () => (int)broker.Statistics.Circuit, "1",
            "The backplane circuit breaker: 0 closed, 1 open, 2 half-open, 3 isolated.");
        meter.CreateObservableCounter("pushservice.broker.gap_fills", () => broker.Statistics.GapFills, "{publication}",
            "Publications delivered from history because pub/sub did not bring them.");
        meter.CreateObservableCounter("pushservice.broker.resets", () => broker.Statistics.ContinuityResets, "{reset}",
            "Times a channel's continuity was lost and its subscribers were told to resubscribe.");
        meter.CreateObservableUpDownCounter("pushservice.broker.channels_behind", () => broker.Statistics.ChannelsBehind, "{channel}",
            "Channels waiting for a gap fill or a catch-up from history.");
    }

    // One walk per instrument per collection: a few thousand connections, a few microseconds each, every scrape.
    private static (long Frames, long Bytes, long Deepest) Outbound(LocalHub hub)
    {
        long frames = 0, bytes = 0, deepest = 0;
        foreach (var connection in hub.Connections)
        {
            var queued = connection.Queue.Count;
            frames += queued;
            bytes += connection.Queue.Bytes;
            deepest = Math.Max(deepest, queued);
        }

        return (frames, bytes, deepest);
    }
}
