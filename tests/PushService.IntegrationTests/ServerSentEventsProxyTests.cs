using System.Net.WebSockets;
using System.Text.Json;
using PushService.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace PushService.IntegrationTests;

/// <summary>
/// Server-Sent Events where WebSockets cannot go: two gateway processes on a real Redis behind a real nginx that passes no
/// upgrade. A browser's own EventSource (Debian's headless Chromium, <c>tests/browser/sse-in-chromium.mjs</c>) follows a
/// channel through nginx; its node is SIGKILLed while publishing goes on; EventSource reconnects through nginx to the
/// other node with Last-Event-ID, and what the page received has no gap and no duplicate. A second EventSource on the
/// page goes straight to a node, across origins; the TypeScript client on the same page falls back to the event stream
/// (the proxy refuses its WebSockets) and comes through the same.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class ServerSentEventsProxyTests(ITestOutputHelper output)
{
    [Fact]
    public async Task EventSource_BehindNginx_ResumesOnTheOtherNode_WithNoGapAndNoDuplicate()
    {
        var proxyPort = FreePort.Next();
        var settings = new Dictionary<string, string>
        {
            ["PushService:WebSocket:AllowedOrigins:0"] = $"http://127.0.0.1:{proxyPort}",
            ["PushService:DefaultNamespace:HistorySize"] = "1000",
        };
        await using var redis = await RedisServer.StartAsync();
        var nodes = await Task.WhenAll(Enumerable.Range(1, 2).Select(i => GatewayProcess.StartAsync($"sse-{i}", redis.Configuration, settings)));
        try
        {
            await using var nginx = await Nginx.StartAsync(nodes[0].BaseAddress, nodes[1].BaseAddress, proxyPort);

            // The proxy breaks WebSockets, as some do: the upgrade never reaches a gateway.
            using (var socket = new ClientWebSocket())
            {
                await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(new Uri($"ws://127.0.0.1:{proxyPort}/ws"), CancellationToken.None));
            }

            var input = JsonSerializer.Serialize(new
            {
                proxy = nginx.BaseAddress.ToString().TrimEnd('/'),
                pagePath = Path.Combine(nginx.Pages, "sse.html"),
                nodes = nodes.Select(n => new { http = n.BaseAddress.ToString().TrimEnd('/'), pid = n.Pid }),
                channel = "sse-e2e",
            });
            var report = await BrowserScript.RunAsync("sse-in-chromium.mjs", "PUSH_SSE_TEST", input, TimeSpan.FromSeconds(120));
            output.WriteLine(report.GetRawText());

            Assert.Empty(report.GetProperty("pageErrors").EnumerateArray());
            var acknowledged = report.GetProperty("acknowledged").EnumerateArray().Select(e => e.GetInt32()).ToList();
            Assert.True(acknowledged.Count >= 40, $"only {acknowledged.Count} publishes were acknowledged");
            Assert.True(report.GetProperty("killedAt").GetInt32() > 0);
            Assert.StartsWith("sse-e2e:", report.GetProperty("idBeforeKill").GetString(), StringComparison.Ordinal);

            // Through nginx: the stream broke with its node and EventSource came back, to the other node, resuming.
            var proxied = report.GetProperty("streams").GetProperty("proxied");
            Assert.True(proxied.GetProperty("opens").GetInt32() >= 2, "EventSource did not reconnect");
            Assert.True(proxied.GetProperty("errors").GetInt32() >= 1);
            Assert.Equal(0, proxied.GetProperty("resets").GetInt32());
            AssertExactlyOnceInOrder(proxied, acknowledged);

            // The TypeScript client: its WebSockets refused by the proxy, it fell back to the event stream, came back after its
            // node died, to the other one, resuming from its own positions; on the stream it refuses to send commands.
            Assert.Equal("eventstream", report.GetProperty("clientTransport").GetString());
            Assert.Equal("unavailable", report.GetProperty("clientPublish").GetString());
            var client = report.GetProperty("streams").GetProperty("client");
            Assert.All(client.GetProperty("transports").EnumerateArray(), t => Assert.Equal("eventstream", t.GetString()));
            Assert.Equal([nodes[0].NodeId, nodes[1].NodeId], client.GetProperty("nodes").EnumerateArray().Select(n => n.GetString()).Take(1)
                .Concat(client.GetProperty("nodes").EnumerateArray().Select(n => n.GetString()).TakeLast(1)));
            Assert.Equal(0, client.GetProperty("resets").GetInt32());
            AssertExactlyOnceInOrder(client, acknowledged);

            // Straight to the node that stayed up, from the proxy's origin: everything, once, in order.
            var direct = report.GetProperty("streams").GetProperty("direct");
            Assert.Equal(1, direct.GetProperty("opens").GetInt32());
            AssertExactlyOnceInOrder(direct, acknowledged);
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }
        }
    }

    private static void AssertExactlyOnceInOrder(JsonElement stream, List<int> acknowledged)
    {
        var received = stream.GetProperty("received").EnumerateArray().Select(e => e.GetInt32()).ToList();
        Assert.Equal(received.Distinct().Count(), received.Count);
        Assert.Equal(received.Order(), received);
        Assert.Empty(acknowledged.Except(received));
    }
}
