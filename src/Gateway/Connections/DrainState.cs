namespace PushService.Gateway.Connections;

/// <summary>Whether this node is draining: it takes no new connections and readiness fails.</summary>
public sealed class DrainState
{
    private volatile bool _draining;

    /// <summary>True once the node started shutting down.</summary>
    public bool IsDraining => _draining;

    /// <summary>Marks the node as draining.</summary>
    public void Start() => _draining = true;
}
