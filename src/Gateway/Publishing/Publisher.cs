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
    private readonly TimeProvider _time;
    private readonly NodeIdentity _node;

    /// <summary>Creates the publisher.</summary>
    public Publisher(IBroker broker, PushMetrics metrics, TimeProvider time, NodeIdentity node)
    {
        _broker = broker;
        _metrics = metrics;
        _time = time;
        _node = node;
    }

    /// <summary>
    /// Publishes <paramref name="data"/> (raw, already validated JSON) to <paramref name="channel"/>, from the REST API
    /// (<paramref name="fromApi"/>) or a client.
    /// </summary>
    /// <exception cref="BrokerUnavailableException">The backplane is down.</exception>
    /// <exception cref="IdempotencyConflictException">The idempotency key was used with other data.</exception>
    public async ValueTask<PublishResult> PublishAsync(string channel, NamespaceOptions ns, ReadOnlyMemory<byte> data, string? idempotencyKey,
        bool fromApi, CancellationToken cancellationToken)
    {
        // The broker span: a child of the request's span, and the parent every receiving node's delivery span names
        // through the trace parent the publication carries.
        using var activity = PushTelemetry.Source.StartActivity(PushTelemetry.PublishSpan, ActivityKind.Producer);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("messaging.system", PushTelemetry.MessagingSystem);
            activity.SetTag("messaging.operation.type", "send");
            activity.SetTag("messaging.destination.name", channel);
            activity.SetTag("messaging.message.body.size", data.Length);
            activity.SetTag(PushTelemetry.NodeTag, _node.Id);
        }

        var options = new PublishOptions
        {
            HistorySize = ns.KeepsHistory ? ns.HistorySize : 0,
            HistoryTtl = ns.KeepsHistory ? ns.HistoryTtl : TimeSpan.Zero,
            IdempotencyKey = idempotencyKey,
            TraceParent = activity?.Id,
            AcceptedAtTicks = _time.GetUtcNow().UtcTicks,
        };

        var started = _time.GetTimestamp();
        PublishResult result;
        try
        {
            result = await _broker.PublishAsync(channel, data, options, cancellationToken);
        }
        catch (Exception ex)
        {
            _metrics.BrokerPublished(_time.GetElapsedTime(started), ex.GetType().Name);
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            activity?.SetTag("error.type", ex.GetType().FullName);
            throw;
        }

        _metrics.BrokerPublished(_time.GetElapsedTime(started), error: null);
        activity?.SetTag("pushservice.offset", result.Position.Offset);
        activity?.SetTag("pushservice.epoch", result.Position.Epoch);
        if (!result.Duplicate)
        {
            _metrics.Published(fromApi);
        }

        return result;
    }
}
