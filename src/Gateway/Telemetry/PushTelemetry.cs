using System.Diagnostics;

namespace PushService.Gateway.Telemetry;

/// <summary>The names under which the gateway reports traces and metrics.</summary>
public static class PushTelemetry
{
    /// <summary>The activity source and meter name.</summary>
    public const string Name = "PushService.Gateway";

    /// <summary>The activity source for publish and subscribe spans.</summary>
    public static ActivitySource Source { get; } = new(Name);
}
