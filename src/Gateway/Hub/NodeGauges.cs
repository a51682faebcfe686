using System.Diagnostics.Metrics;
using PushService.Broker;

namespace PushService.Gateway.Hub;

/// <summary>
/// The node's states as observable instruments on the gateway's meter: the hub's channels and the broker's state (the
/// connections' queues are the connection registry's). Read when metrics are collected (a scrape, an export), so they
/// cost the hot path nothing. The hub registers them when it is made, as the send scheduler does its own.
/// </summary>
internal static class NodeGauges
{
    public static void Register(Meter meter, LocalHub hub, IBroker broker)
    {
        meter.CreateObservableUpDownCounter("pushservice.channels", () => hub.ChannelCount, "{channel}",
            "Channels with local subscribers, each one backplane subscription.");
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
}
