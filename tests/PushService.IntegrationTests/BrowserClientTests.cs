using System.Text.Json;
using PushService.IntegrationTests.Infrastructure;
using PushService.Testing;
using Xunit.Abstractions;

namespace PushService.IntegrationTests;

/// <summary>
/// The TypeScript client, loaded from a gateway's <c>/sdk/push.js</c> by an application page on another origin, in
/// Debian's headless Chromium driven by playwright-core (<c>tests/browser/client-in-chromium.mjs</c>), against two
/// gateway processes on a real Redis: a token that expires is refreshed on the same connection; the page's node is
/// SIGKILLed while publishing goes on, and the page's list of received sequence numbers has no gap and no duplicate.
/// The chat sample (<c>samples/chat</c>) runs in two tabs on the same nodes, the dashboard sample from history then live,
/// and the module in Node 20 on its global WebSocket.
/// </summary>
public sealed class BrowserClientTests(ITestOutputHelper output)
{
    [Fact]
    public async Task TheBrowserClient_RefreshesItsToken_AndSurvivesItsNodeDying_WithNoGapAndNoDuplicate()
    {
        var pagePort = FreePort.Next();
        var settings = new Dictionary<string, string>
        {
            ["PushService:Auth:Jwt:Secret"] = Tokens.Secret,
            ["PushService:Auth:Jwt:ClockSkew"] = "00:00:00",
            ["PushService:WebSocket:AllowedOrigins:0"] = $"http://127.0.0.1:{pagePort}",

            // What the chat sample needs, as appsettings.Development.json gives it to `dotnet run`.
            ["PushService:Auth:AllowAnonymous"] = "true",
            ["PushService:Namespaces:chat:AllowClientPublish"] = "true",
            ["PushService:Namespaces:chat:AllowAnonymousSubscribe"] = "true",
            ["PushService:Namespaces:chat:Presence"] = "true",
            ["PushService:Namespaces:chat:JoinLeave"] = "true",
            ["PushService:Namespaces:dashboard:HistorySize"] = "120",
            ["PushService:Namespaces:dashboard:AllowAnonymousSubscribe"] = "true",
        };
        await using var redis = await RedisServer.StartAsync();
        var nodes = await Task.WhenAll(Enumerable.Range(1, 2).Select(i => GatewayProcess.StartAsync($"node-{i}", redis.Configuration, settings)));
        try
        {
            var input = JsonSerializer.Serialize(new
            {
                nodes = nodes.Select(n => new { ws = n.WebSocketUri.ToString(), http = n.BaseAddress.ToString().TrimEnd('/'), pid = n.Pid }),
                pagePort,
                secret = Tokens.Secret,
            });
            var report = await BrowserScript.RunAsync("client-in-chromium.mjs", "PUSH_BROWSER_TEST", input, TimeSpan.FromSeconds(120));
            output.WriteLine(report.GetRawText());

            // The same module in Node 20, on its own global WebSocket.
            var node = report.GetProperty("node");
            Assert.Equal("function", node.GetProperty("globalWebSocket").GetString());
            AssertExactlyOnceInOrder(node, minimum: 20);

            // The token lived 6 s and the page stayed 14 s on one connection: refreshed, never reconnected, missed nothing.
            var refresh = report.GetProperty("refresh");
            Assert.Empty(refresh.GetProperty("errors").EnumerateArray());
            Assert.Equal(0, refresh.GetProperty("reconnects").GetInt32());
            Assert.True(refresh.GetProperty("tokenCalls").GetInt32() >= 3, $"the token was fetched {refresh.GetProperty("tokenCalls")} times");
            AssertExactlyOnceInOrder(refresh);

            // The chat sample: what alice sent, both tabs show, and each sees two people in the room.
            var chat = report.GetProperty("chat");
            foreach (var user in new[] { "alice", "bob" })
            {
                Assert.Empty(chat.GetProperty(user).GetProperty("errors").EnumerateArray());
                Assert.Equal(["alicehi bob"], chat.GetProperty(user).GetProperty("messages").EnumerateArray().Select(m => m.GetString()));
                Assert.Equal("2 here", chat.GetProperty(user).GetProperty("people").GetString());
            }

            // The dashboard sample: the five readings before it opened from history, then two live, in order, once each.
            var dashboard = report.GetProperty("dashboard");
            Assert.Empty(dashboard.GetProperty("errors").EnumerateArray());
            Assert.All(dashboard.GetProperty("statuses").EnumerateArray(), status => Assert.Equal(200, status.GetInt32()));
            Assert.Equal("0,90 1,80 2,70 3,60 4,50", dashboard.GetProperty("fromHistory").GetString());
            Assert.Equal("0,90 1,80 2,70 3,60 4,50 5,40 6,30", dashboard.GetProperty("live").GetString());
            Assert.Equal("70%", dashboard.GetProperty("value").GetString());

            // Its node died: it went to the other one and recovered everything published meanwhile, once each.
            var failover = report.GetProperty("failover");
            Assert.Equal("node-1", failover.GetProperty("before").GetString());
            Assert.Equal("node-2", failover.GetProperty("node").GetString());
            Assert.True(failover.GetProperty("reconnects").GetInt32() >= 1);
            Assert.Equal(0, failover.GetProperty("resets").GetInt32());
            AssertExactlyOnceInOrder(failover);
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }
        }
    }

    /// <summary>Every acknowledged publication arrived, once, in the order published, and the page shows each.</summary>
    private static void AssertExactlyOnceInOrder(JsonElement scenario, int minimum = 30)
    {
        var acknowledged = scenario.GetProperty("acknowledged").EnumerateArray().Select(e => e.GetInt32()).ToList();
        var received = scenario.GetProperty("received").EnumerateArray().Select(e => e.GetInt32()).ToList();
        Assert.True(acknowledged.Count >= minimum, $"only {acknowledged.Count} publishes were acknowledged");
        Assert.Equal(received.Distinct().Count(), received.Count);
        Assert.Equal(received.Order(), received);
        Assert.Empty(acknowledged.Except(received));
        Assert.Equal(received.Count, scenario.GetProperty("shown").GetInt32());
    }
}
