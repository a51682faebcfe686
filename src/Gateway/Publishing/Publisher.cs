using System.Diagnostics;
using PushService.Broker;
using PushService.Gateway.Configuration;
using PushService.Gateway.Telemetry;

namespace PushService.Gateway.Publishing;

/// <summary>
/// Publishes validated data to a channel with its namespace's history settings. The one path shared by the REST API
/// and client publishes, so both store, count and trace publications the same way.
/// </summary>
public sealed class Publisher
{
    private readonly IBroker _broker;
    private readonly PushMetrics _metrics;

    /// <summary>Creates the publisher.</summary>
    public Publisher(IBroker broker, PushMetrics metrics)
    {
        _broker = broker;
        _metrics = metrics;
    }

    /// <summary>Publishes <paramref name="data"/> (raw, already validated JSON) to <paramref name="channel"/>.</summary>
    /// <exception cref="BrokerUnavailableException">The backplane is down.</exception>
    /// <exception cref="IdempotencyConflictException">The idempotency key was used with other data.</exception>
    public async ValueTask<PublishResult> PublishAsync(string channel, NamespaceOptions ns, ReadOnlyMemory<byte> data, string? idempotencyKey, CancellationToken cancellationToken)
    {
        using var activity = PushTelemetry.Source.StartActivity("publish", ActivityKind.Producer);
        activity?.SetTag("messaging.destination.name", channel);
        var options = new PublishOptions
        {
            HistorySize = ns.KeepsHistory ? ns.HistorySize : 0,
            HistoryTtl = ns.KeepsHistory ? ns.HistoryTtl : TimeSpan.Zero,
            IdempotencyKey = idempotencyKey,
            TraceParent = activity?.Id,
        };

        var result = await _broker.PublishAsync(channel, data, options, cancellationToken);
        activity?.SetTag("pushservice.offset", result.Position.Offset);
        if (!result.Duplicate)
        {
            _metrics.Published();
        }

        return result;
    }
}
