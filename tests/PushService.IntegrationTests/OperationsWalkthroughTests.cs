using System.Text;
using PushService.IntegrationTests.Infrastructure;
using PushService.Testing;

namespace PushService.IntegrationTests;

/// <summary>
/// docs/operations.md's walk-through against two gateway processes started as the README starts one, exporting over
/// OTLP/HTTP to a receiver the test runs: subscribe on node b, publish on node a, take the trace id the response names,
/// and find that trace, with node a's request and publish spans and node b's delivery span under them, at the collector.
/// (Reading the totals in Prometheus and the dashboard's expressions is <see cref="MetricsTests"/>.)
/// </summary>
public sealed class OperationsWalkthroughTests
{
    private const int Server = 2;
    private const int Producer = 4;
    private const int Consumer = 5;

    [Fact]
    public async Task PublishOnA_FindTheTraceByItsId_SeeTheDeliveryOnB()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var collector = await OtlpReceiver.StartAsync();
        var otlp = new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.Endpoint.ToString().TrimEnd('/'),
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            // Export within a fraction of a second rather than the defaults' 5 s (spans) and 60 s (metrics).
            ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
            ["OTEL_BLRP_SCHEDULE_DELAY"] = "200",
            ["OTEL_METRIC_EXPORT_INTERVAL"] = "1000",
        };
        await using var a = await GatewayProcess.StartAsync("node-a", redis.Configuration, environment: otlp);
        await using var b = await GatewayProcess.StartAsync("node-b", redis.Configuration, environment: otlp);

        // 1. Subscribe on node b.
        await using var subscriber = await TestClient.OpenAsync(b.WebSocketUri);
        await subscriber.ResultAsync(new { op = "connect" });
        await subscriber.ResultAsync(new { op = "subscribe", channel = "orders" });

        // 2. Publish on node a; the response names its trace.
        using var response = await a.Http.PostAsync("/api/v1/channels/orders/messages", new StringContent("{\"data\":{\"id\":1}}", Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
        var traceResponse = Assert.Single(response.Headers.GetValues("traceresponse"));
        var parts = traceResponse.Split('-');
        Assert.Equal(4, parts.Length);
        var traceId = parts[1];
        Assert.Matches("^[0-9a-f]{32}$", traceId);
        await subscriber.MessagesAsync("orders", 1);

        // 3. Find the trace at the collector: a's request and publish spans, b's delivery span under the publish span.
        OtlpReceiver.Span? request = null, publish = null, deliver = null;
        await Poll.UntilAsync(() =>
        {
            var trace = collector.Spans.Where(s => s.TraceId == traceId).ToList();
            request = trace.FirstOrDefault(s => s.Kind == Server && s.Node == "node-a");
            publish = trace.FirstOrDefault(s => s.Name == "publish" && s.Node == "node-a");
            deliver = trace.FirstOrDefault(s => s.Name == "deliver" && s.Node == "node-b");
            return request is not null && publish is not null && deliver is not null;
        }, TimeSpan.FromSeconds(20), () => $"trace {traceId} at the collector: " + string.Join(", ",
            collector.Spans.Where(s => s.TraceId == traceId).Select(s => $"{s.Node}/{s.Scope}/{s.Name}")));

        Assert.Equal(parts[2], request!.SpanId);
        Assert.Equal("/api/v1/channels/orders/messages", request.Attributes["url.path"]);
        Assert.Equal(request.SpanId, publish!.ParentSpanId);
        Assert.Equal(Producer, publish.Kind);
        Assert.Equal("orders", publish.Attributes["messaging.destination.name"]);
        Assert.Equal(publish.SpanId, deliver!.ParentSpanId);
        Assert.Equal(Consumer, deliver.Kind);
        Assert.Equal("1", deliver.Attributes["pushservice.subscribers"]);
        Assert.Equal("node-b", deliver.Attributes["pushservice.node.id"]);
        Assert.DoesNotContain(collector.Spans, s => s.TraceId == traceId && s.Name == "deliver" && s.Node == "node-a");

        // Metrics and logs go to the same collector.
        await Poll.UntilAsync(() => collector.MetricsPosts > 0 && collector.LogsPosts > 0, TimeSpan.FromSeconds(20),
            () => $"metrics posts {collector.MetricsPosts}, logs posts {collector.LogsPosts}");
    }
}
