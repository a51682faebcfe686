using Microsoft.Extensions.Options;

namespace PushService.Gateway.Configuration;

/// <summary>This node's id and start time.</summary>
public sealed class NodeIdentity
{
    /// <summary>Creates the identity: the configured node id, or the host name plus a random suffix.</summary>
    public NodeIdentity(IOptions<PushServiceOptions> options, TimeProvider time)
    {
        var configured = options.Value.NodeId;
        Id = configured.Length > 0 ? configured : $"{Environment.MachineName.ToLowerInvariant()}-{Guid.NewGuid().ToString("N")[..6]}";
        StartedAt = time.GetUtcNow();
    }

    /// <summary>The node id.</summary>
    public string Id { get; }

    /// <summary>When the node started.</summary>
    public DateTimeOffset StartedAt { get; }
}
