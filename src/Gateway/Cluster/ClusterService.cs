using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PushService.Broker.Control;
using PushService.Gateway.Configuration;
using PushService.Gateway.Connections;
using PushService.Gateway.Hub;
using PushService.Gateway.Protocol;
using PushService.Gateway.Telemetry;

namespace PushService.Gateway.Cluster;

/// <summary>
/// This node in the cluster: reports its numbers through the control plane on every heartbeat, carries out commands
/// from other nodes, refreshes the presence of its subscribers, and answers the cluster-wide REST questions with its
/// own live numbers plus the other nodes' latest reports.
/// </summary>
public sealed partial class ClusterService : BackgroundService, IControlHandler
{
    private readonly IControlPlane _control;
    private readonly LocalHub _hub;
    private readonly ConnectionRegistry _connections;
    private readonly NodeIdentity _node;
    private readonly PushServiceOptions _options;
    private readonly TimeProvider _time;
    private readonly ActivityCounters _counters;
    private readonly ActivityHistory _activity = new();
    private readonly ILogger<ClusterService> _logger;

    /// <summary>Creates the service.</summary>
    public ClusterService(
        IControlPlane control, LocalHub hub, ConnectionRegistry connections, NodeIdentity node, IOptions<PushServiceOptions> options,
        PushMetrics metrics, TimeProvider time, ILogger<ClusterService> logger)
    {
        _control = control;
        _hub = hub;
        _connections = connections;
        _node = node;
        _options = options.Value;
        _time = time;
        _counters = metrics.Activity;
        _logger = logger;
    }

    /// <summary>This node's live numbers.</summary>
    public NodeReport LocalReport()
    {
        var now = _time.GetUtcNow();
        return new(
            _node.Id,
            _connections.Count,
            _hub.SubscriptionCount,
            (long)(now - _node.StartedAt).TotalSeconds,
            _hub.ChannelSubscribers().ToDictionary(c => c.Channel, c => c.Subscribers, StringComparer.Ordinal),
            _activity.Report(now, _counters.Read()));
    }

    /// <summary>Every live node: this one exactly, the others as of their last heartbeat.</summary>
    public async Task<IReadOnlyList<NodeReport>> NodesAsync(CancellationToken cancellationToken)
    {
        var local = LocalReport();
        var others = (await _control.NodesAsync(cancellationToken)).Where(n => n.Node != _node.Id);
        return [local, .. others.OrderBy(n => n.Node, StringComparer.Ordinal)];
    }

    /// <summary>Subscribers per channel across the cluster.</summary>
    public async Task<IReadOnlyList<(string Channel, int Subscribers)>> ChannelsAsync(CancellationToken cancellationToken)
    {
        var totals = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var node in await NodesAsync(cancellationToken))
        {
            foreach (var (channel, count) in node.Channels)
            {
                totals[channel] = totals.GetValueOrDefault(channel) + count;
            }
        }

        return [.. totals.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => (t.Key, t.Value))];
    }

    /// <summary>Disconnects a user's connections on every node.</summary>
    public Task<int> DisconnectUserAsync(string user, bool reconnect, CancellationToken cancellationToken) =>
        _control.DisconnectUserAsync(user, reconnect, cancellationToken);

    /// <inheritdoc />
    ValueTask<int> IControlHandler.DisconnectUserAsync(string user, bool reconnect) =>
        ValueTask.FromResult(_connections.DisconnectUser(user, reconnect ? Disconnect.GoingAway : Disconnect.Normal));

    /// <inheritdoc />
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await _control.StartAsync(_node.Id, this, cancellationToken);
        await base.StartAsync(cancellationToken);
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var heartbeat = _options.Cluster.HeartbeatInterval;
        var presenceEvery = Math.Max(1, (int)(_options.Presence.RefreshInterval / heartbeat));
        using var timer = new PeriodicTimer(heartbeat, _time);
        var tick = 0;
        do
        {
            try
            {
                await _control.ReportAsync(LocalReport(), heartbeat * 3, stoppingToken);
                if (++tick % presenceEvery == 0)
                {
                    await _hub.RefreshPresenceAsync(stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The backplane may be down; readiness reports that, the heartbeat just tries again.
                Log.HeartbeatFailed(_logger, ex.Message);
            }
        }
        while (await WaitAsync(timer, stoppingToken));
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken stoppingToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stoppingToken);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(700, LogLevel.Warning, "Node heartbeat failed: {Message}")]
        public static partial void HeartbeatFailed(ILogger logger, string message);
    }
}
