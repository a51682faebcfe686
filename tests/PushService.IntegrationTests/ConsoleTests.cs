using System.Text.Json;
using PushService.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace PushService.IntegrationTests;

/// <summary>
/// The web console in Debian's headless Chromium (playwright-core, <c>tests/browser/console-in-chromium.mjs</c>) on one of
/// two gateway processes sharing a real Redis, signed in with API keys as in production: wrong and read-only keys are
/// refused, both nodes are shown, a subscription made in the page receives what is published through REST on the other
/// node (and recovers with <c>since</c>), history, presence and publishing work from the page, the chart follows a load,
/// and a protocol error on the other node shows under disconnects by its close code.
/// </summary>
public sealed class ConsoleTests(ITestOutputHelper output)
{
    private const string AdminKey = "console-admin-key-0123456789";
    private const string ReadKey = "console-read-key-01234567890";

    [Fact]
    public async Task TheConsole_ShowsBothNodes_AndItsPlaygroundWorksAcrossNodes_BehindAnAdminKey()
    {
        var settings = new Dictionary<string, string>
        {
            ["PushService:Api:Keys:0:Key"] = AdminKey,
            ["PushService:Api:Keys:0:Scopes:0"] = "admin",
            ["PushService:Api:Keys:1:Key"] = ReadKey,
            ["PushService:Api:Keys:1:Scopes:0"] = "read",
            ["PushService:DefaultNamespace:Presence"] = "true",
        };
        await using var redis = await RedisServer.StartAsync();
        var nodes = await Task.WhenAll(Enumerable.Range(1, 2).Select(i => GatewayProcess.StartAsync($"console-{i}", redis.Configuration, settings)));
        try
        {
            // PUSH_CONSOLE_SCREENSHOT=docs/console.png makes the picture in the docs again.
            var screenshot = Environment.GetEnvironmentVariable("PUSH_CONSOLE_SCREENSHOT") is { Length: > 0 } target
                ? Path.GetFullPath(target, BuiltAssembly.RepositoryRoot)
                : Path.Combine(Path.GetTempPath(), $"pushservice-console-{Guid.NewGuid():N}.png");
            var input = JsonSerializer.Serialize(new
            {
                nodes = nodes.Select(n => new { http = n.BaseAddress.ToString().TrimEnd('/'), node = n.NodeId }),
                adminKey = AdminKey,
                readKey = ReadKey,
                screenshot,
            });
            var report = await BrowserScript.RunAsync("console-in-chromium.mjs", "PUSH_CONSOLE_TEST", input, TimeSpan.FromSeconds(150));
            output.WriteLine(report.GetRawText());

            Assert.Empty(report.GetProperty("pageErrors").EnumerateArray());
            Assert.Empty(report.GetProperty("policyViolations").EnumerateArray());
            Assert.EndsWith("/console/", report.GetProperty("url").GetString(), StringComparison.Ordinal);

            // Refused keys: the API's reason is shown, the dashboard stays hidden and the key is not kept.
            var wrong = report.GetProperty("wrongKey");
            Assert.Equal("The API key is not valid.", wrong.GetProperty("error").GetString());
            Assert.True(wrong.GetProperty("dashboardHidden").GetBoolean());
            Assert.Equal(0, wrong.GetProperty("stored").GetInt32());
            var reader = report.GetProperty("readKey");
            Assert.Equal("The API key lacks the 'admin' scope.", reader.GetProperty("error").GetString());
            Assert.True(reader.GetProperty("dashboardHidden").GetBoolean());

            // The admin key: both nodes, the key in the tab's session storage only, never in the address.
            Assert.Equal(nodes.Select(n => n.NodeId).Order(), report.GetProperty("nodesShown").EnumerateArray().Select(n => n.GetString()!).Order());
            Assert.False(report.GetProperty("keyInUrl").GetBoolean());
            Assert.True(report.GetProperty("keyStoredInSession").GetBoolean());
            Assert.Equal(0, report.GetProperty("keyStoredLocally").GetInt32());
            Assert.Equal("2", report.GetProperty("tiles").GetProperty("nodes").GetString());

            // Subscribed on the first node, published on the second: it arrived, once.
            Assert.Equal($"connected to {nodes[0].NodeId}", report.GetProperty("socketState").GetString());
            var crossNode = Assert.Single(report.GetProperty("crossNode").EnumerateArray());
            Assert.Contains("console-e2e #1", crossNode.GetString(), StringComparison.Ordinal);

            // Since offset 2 of 4: offsets 3 and 4 came back, in order, before the subscription was confirmed.
            Assert.Equal(2, report.GetProperty("sinceOffset").GetInt32());
            var recovered = report.GetProperty("recovered").EnumerateArray().Select(e => e.GetString()!).ToList();
            Assert.Equal(2, recovered.Count);
            Assert.Contains("console-since #3{\"n\":3}", recovered[0], StringComparison.Ordinal);
            Assert.Contains("console-since #4{\"n\":4}", recovered[1], StringComparison.Ordinal);

            Assert.Contains("console-e2e: 1 client(s)", report.GetProperty("presence").GetString(), StringComparison.Ordinal);
            Assert.StartsWith("The data is not JSON", report.GetProperty("badJson").GetString(), StringComparison.Ordinal);
            Assert.True(report.GetProperty("publishedFromPage").GetBoolean());

            // The chart followed the load: what the two nodes accepted in those seconds is in its series, and it moved.
            var published = report.GetProperty("loadPublished").GetInt32();
            var before = report.GetProperty("chart").GetProperty("before");
            var after = report.GetProperty("chart").GetProperty("after");
            Assert.True(published >= 200, $"only {published} publications were sent under load");
            var added = after.GetProperty("publications").GetDouble() - before.GetProperty("publications").GetDouble();
            Assert.InRange(added, published * 0.9, published * 1.1 + 20);
            Assert.True(after.GetProperty("deliveries").GetDouble() > before.GetProperty("deliveries").GetDouble());
            Assert.NotEqual(before.GetProperty("points").GetString(), after.GetProperty("points").GetString());

            // The busiest channel is the page's own subscription, one subscriber across the cluster.
            var busiest = report.GetProperty("busiest").EnumerateArray().Select(r => (r[0].GetString(), r[1].GetString())).ToList();
            Assert.Contains(("console-e2e", "1"), busiest);

            // The protocol error on the other node: one 4000, with its meaning.
            var disconnects = report.GetProperty("disconnects").EnumerateArray().Select(r => r.EnumerateArray().Select(c => c.GetString()).ToList()).ToList();
            Assert.Contains(["4000", "bad request", "1"], disconnects);

            var signedOut = report.GetProperty("afterSignOut");
            Assert.Equal(0, signedOut.GetProperty("stored").GetInt32());
            Assert.True(signedOut.GetProperty("dashboardHidden").GetBoolean());
            Assert.True(new FileInfo(screenshot).Length > 10_000, "no screenshot was taken");
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }
        }
    }
}
