namespace PushService.Broker.Control;

/// <summary>What a node reports about itself to the others.</summary>
/// <param name="Node">The node id.</param>
/// <param name="Connections">Open connections.</param>
/// <param name="Subscriptions">Subscriptions of those connections.</param>
/// <param name="UptimeSeconds">Seconds since the node started.</param>
/// <param name="Channels">Local subscriber count per channel.</param>
public sealed record NodeReport(string Node, int Connections, int Subscriptions, long UptimeSeconds, IReadOnlyDictionary<string, int> Channels);

/// <summary>Carries out node-to-node commands on this node.</summary>
public interface IControlHandler
{
    /// <summary>Closes the local connections of <paramref name="user"/> and says how many there were.</summary>
    ValueTask<int> DisconnectUserAsync(string user, bool reconnect);
}

/// <summary>
/// Node-to-node commands and the node registry, kept apart from the data path (as Centrifuge's Controller):
/// heartbeats let any node answer for the whole cluster, and commands reach every node.
/// </summary>
public interface IControlPlane
{
    /// <summary>Starts receiving commands for <paramref name="handler"/>.</summary>
    Task StartAsync(string nodeId, IControlHandler handler, CancellationToken cancellationToken);

    /// <summary>Records this node's report, valid for <paramref name="ttl"/>.</summary>
    Task ReportAsync(NodeReport report, TimeSpan ttl, CancellationToken cancellationToken = default);

    /// <summary>The live nodes' latest reports.</summary>
    Task<IReadOnlyList<NodeReport>> NodesAsync(CancellationToken cancellationToken = default);

    /// <summary>Disconnects <paramref name="user"/> on every node and returns the total number of connections closed.</summary>
    Task<int> DisconnectUserAsync(string user, bool reconnect, CancellationToken cancellationToken = default);
}
