namespace PushService.Broker.Control;

/// <summary>What a node reports about itself to the others.</summary>
/// <param name="Node">The node id.</param>
/// <param name="Connections">Open connections.</param>
/// <param name="Subscriptions">Subscriptions of those connections.</param>
/// <param name="UptimeSeconds">Seconds since the node started.</param>
/// <param name="Channels">Local subscriber count per channel.</param>
/// <param name="Activity">What the node did lately (null from a node of a version before it was reported).</param>
public sealed record NodeReport(
    string Node, int Connections, int Subscriptions, long UptimeSeconds, IReadOnlyDictionary<string, int> Channels, NodeActivity? Activity = null);

/// <summary>
/// What a node did in the last few minutes, second by second: what the web console charts. Every node keeps its own
/// and sends it with its heartbeat, so any node can show the whole cluster.
/// </summary>
/// <param name="Second">The Unix second of the newest bucket, the last whole second before the report.</param>
/// <param name="Publications">Publications the node accepted in each second, oldest first, the last one being <paramref name="Second"/>.</param>
/// <param name="Deliveries">Pushes queued to the node's subscribers in each second, aligned with <paramref name="Publications"/>.</param>
/// <param name="Disconnects">Connections that ended in the same window, by close code.</param>
public sealed record NodeActivity(long Second, int[] Publications, int[] Deliveries, IReadOnlyDictionary<int, long> Disconnects);

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
