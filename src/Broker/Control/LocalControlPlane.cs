namespace PushService.Broker.Control;

/// <summary>The control plane of a single node: the registry is this node, commands run here.</summary>
public sealed class LocalControlPlane : IControlPlane
{
    private IControlHandler? _handler;
    private NodeReport? _report;

    /// <inheritdoc />
    public Task StartAsync(string nodeId, IControlHandler handler, CancellationToken cancellationToken)
    {
        _handler = handler;
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task ReportAsync(NodeReport report, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        _report = report;
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<NodeReport>> NodesAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<NodeReport>>(_report is null ? [] : [_report]);

    /// <inheritdoc />
    public async Task<int> DisconnectUserAsync(string user, bool reconnect, CancellationToken cancellationToken = default) =>
        _handler is null ? 0 : await _handler.DisconnectUserAsync(user, reconnect);
}
