using System.Diagnostics;
using System.Text;
using PushService.Gateway.Telemetry;
using PushService.IntegrationTests.Infrastructure;
using PushService.Testing;

namespace PushService.IntegrationTests;

/// <summary>
/// One publication followed through two nodes on a real Redis, each exporting to memory: the REST request's span on
/// the publishing node, its publish span, and on every node with subscribers one delivery span whose parent is the
/// publish span, carried through Redis. (One class, so its tests never run beside each other: tracer providers in one
/// process see each other's spans.)
/// </summary>
public sealed class TracingTests
{
    private const string Channel = "traced";

    [Fact]
    public async Task APublicationOnOneNode_DeliveredOnTheOther_IsOneTrace_WithOneDeliverySpanPerNode()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var a = TracedGateway.Start("trace-a", redis.Configuration);
        await using var b = TracedGateway.Start("trace-b", redis.Configuration);
        var onA = await Subscribers.OpenAsync(a.WebSocketUri, Channel, 1);
        var onB = await Subscribers.OpenAsync(b.WebSocketUri, Channel, 3);

        using (var response = await a.Http.PostAsync($"/api/v1/channels/{Channel}/messages", Json("{\"data\":{\"n\":1}}")))
        {
            response.EnsureSuccessStatusCode();
        }

        foreach (var client in onA.Concat(onB))
        {
            await client.MessagesAsync(Channel, 1);
        }

        // A's exporter: the request's server span and its publish span, recorded by node A.
        var publish = await SingleAsync(a, s => s.Source.Name == PushTelemetry.Name && s.OperationName == PushTelemetry.PublishSpan);
        Assert.Equal(ActivityKind.Producer, publish.Kind);
        Assert.Equal("trace-a", publish.GetTagItem(PushTelemetry.NodeTag));
        Assert.Equal(Channel, publish.GetTagItem("messaging.destination.name"));
        var request = await SingleAsync(a, s => s.SpanId == publish.ParentSpanId);
        Assert.Equal(ActivityKind.Server, request.Kind);
        Assert.Equal("Microsoft.AspNetCore", request.Source.Name);
        Assert.Equal($"/api/v1/channels/{Channel}/messages", request.GetTagItem("url.path"));

        // The caller's own HttpClient span (this test process is traced too, as a backend would be) is the root: the
        // trace context went in with the request's traceparent header.
        var caller = await SingleAsync(a, s => s.SpanId == request.ParentSpanId);
        Assert.Equal(ActivityKind.Client, caller.Kind);
        Assert.Equal("System.Net.Http", caller.Source.Name);

        // B's exporter: B's delivery span, in the same trace, a child of A's publish span: one span for its three subscribers.
        var deliveredOnB = await SingleAsync(b, s => s.OperationName == PushTelemetry.DeliverSpan && (string?)s.GetTagItem(PushTelemetry.NodeTag) == "trace-b");
        Assert.Equal(publish.TraceId, deliveredOnB.TraceId);
        Assert.Equal(publish.SpanId, deliveredOnB.ParentSpanId);
        Assert.Equal(ActivityKind.Consumer, deliveredOnB.Kind);
        Assert.Equal(3, deliveredOnB.GetTagItem("pushservice.subscribers"));
        Assert.True(deliveredOnB.HasRemoteParent);

        // And A delivered to its own subscriber under the same parent; no other delivery span exists for the publication.
        var deliveredOnA = await SingleAsync(a, s => s.OperationName == PushTelemetry.DeliverSpan && (string?)s.GetTagItem(PushTelemetry.NodeTag) == "trace-a");
        Assert.Equal(publish.SpanId, deliveredOnA.ParentSpanId);
        Assert.Equal(1, deliveredOnA.GetTagItem("pushservice.subscribers"));
        Assert.Equal(2, b.Spans.Snapshot().Count(s => s.OperationName == PushTelemetry.DeliverSpan && s.TraceId == publish.TraceId));

        // A request that reads Redis through the multiplexer has the Redis command as a child span (StackExchange.Redis
        // instrumentation, which hands its spans over on its own flush).
        using (var history = await a.Http.GetAsync($"/api/v1/channels/{Channel}/history"))
        {
            history.EnsureSuccessStatusCode();
        }

        var historyRequest = await SingleAsync(a, s => s.Kind == ActivityKind.Server && (string?)s.GetTagItem("url.path") == $"/api/v1/channels/{Channel}/history");
        var redisCommand = await SingleAsync(a, s => s.ParentSpanId == historyRequest.SpanId && s.Kind == ActivityKind.Client, TimeSpan.FromSeconds(30));
        Assert.Equal("redis", redisCommand.GetTagItem("db.system") ?? redisCommand.GetTagItem("db.system.name"));

        foreach (var client in onA.Concat(onB))
        {
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task SamplingFollowsTheOtelSettings_AndAnUnsampledPublicationMakesNoDeliverySpan()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var node = TracedGateway.Start("trace-unsampled", redis.Configuration, new Dictionary<string, string?>
        {
            ["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio",
            ["OTEL_TRACES_SAMPLER_ARG"] = "0",
        });
        var subscribers = await Subscribers.OpenAsync(node.WebSocketUri, Channel, 2);
        for (var i = 0; i < 5; i++)
        {
            using var response = await node.Http.PostAsync($"/api/v1/channels/{Channel}/messages", Json($"{{\"data\":{i}}}"));
            response.EnsureSuccessStatusCode();
        }

        foreach (var client in subscribers)
        {
            await client.MessagesAsync(Channel, 5);
        }

        // Delivered, and nothing recorded: no request, publish or delivery span.
        Assert.DoesNotContain(node.Spans.Snapshot(), s => s.Source.Name == PushTelemetry.Name || s.Kind == ActivityKind.Server);
        foreach (var client in subscribers)
        {
            await client.DisposeAsync();
        }
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static async Task<Activity> SingleAsync(TracedGateway node, Func<Activity, bool> match, TimeSpan? timeout = null)
    {
        List<Activity> found = [];
        await Poll.UntilAsync(() => (found = [.. node.Spans.Snapshot().Where(match)]).Count > 0, timeout ?? TimeSpan.FromSeconds(10),
            () => "no such span among: " + string.Join(", ", node.Spans.Snapshot().Select(s => $"{s.Source.Name}/{s.OperationName}/{s.Kind}")));
        return Assert.Single(found);
    }
}
