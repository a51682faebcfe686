using OpenTelemetry.Resources;
using PushService.Gateway.Configuration;

namespace PushService.Gateway.Telemetry;

/// <summary>
/// Names the node in every exported metric, span and log: <c>service.instance.id</c> is the node id, the same one the
/// cluster's heartbeats and <c>/api/v1/info</c> report, so a trace's spans can be told apart by node.
/// </summary>
internal sealed class NodeResourceDetector(NodeIdentity node) : IResourceDetector
{
    public Resource Detect() => new([new KeyValuePair<string, object>("service.instance.id", node.Id)]);
}
