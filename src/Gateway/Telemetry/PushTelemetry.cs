using System.Diagnostics;

namespace PushService.Gateway.Telemetry;

/// <summary>
/// The names under which the gateway reports traces and metrics: one <see cref="ActivitySource"/> and one meter (see
/// <see cref="PushMetrics"/>), both called <see cref="Name"/>.
/// </summary>
/// <remarks>
/// A publication's trace: the REST request's server span (ASP.NET Core), its <see cref="PublishSpan"/> child (the broker
/// call, kind producer), and on every node with subscribers one <see cref="DeliverSpan"/> (kind consumer) whose parent
/// is that publish span, carried through Redis as a W3C trace parent. Never a span per subscriber.
/// </remarks>
public static class PushTelemetry
{
    /// <summary>The activity source and meter name.</summary>
    public const string Name = "PushService.Gateway";

    /// <summary>The broker call of a publish, on the publishing node.</summary>
    public const string PublishSpan = "publish";

    /// <summary>One node's fan-out of one publication to its local subscribers.</summary>
    public const string DeliverSpan = "deliver";

    /// <summary>The <c>messaging.system</c> of the spans.</summary>
    public const string MessagingSystem = "pushservice";

    /// <summary>The node that recorded a span.</summary>
    public const string NodeTag = "pushservice.node.id";

    /// <summary>The activity source for publish and delivery spans.</summary>
    public static ActivitySource Source { get; } = new(Name);
}
