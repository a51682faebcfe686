using System.Diagnostics;
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
            var report = await RunAsync(input);
            output.WriteLine(report.GetRawText());

            // The token lived 6 s and the page stayed 14 s on one connection: refreshed, never reconnected, missed nothing.
            var refresh = report.GetProperty("refresh");
            Assert.Empty(refresh.GetProperty("errors").EnumerateArray());
            Assert.Equal(0, refresh.GetProperty("reconnects").GetInt32());
            Assert.True(refresh.GetProperty("tokenCalls").GetInt32() >= 3, $"the token was fetched {refresh.GetProperty("tokenCalls")} times");
            AssertExactlyOnceInOrder(refresh);

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
    private static void AssertExactlyOnceInOrder(JsonElement scenario)
    {
        var acknowledged = scenario.GetProperty("acknowledged").EnumerateArray().Select(e => e.GetInt32()).ToList();
        var received = scenario.GetProperty("received").EnumerateArray().Select(e => e.GetInt32()).ToList();
        Assert.True(acknowledged.Count >= 30, $"only {acknowledged.Count} publishes were acknowledged");
        Assert.Equal(received.Distinct().Count(), received.Count);
        Assert.Equal(received.Order(), received);
        Assert.Empty(acknowledged.Except(received));
        Assert.Equal(received.Count, scenario.GetProperty("shown").GetInt32());
    }

    private static async Task<JsonElement> RunAsync(string input)
    {
        var info = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(BuiltAssembly.RepositoryRoot, "tests", "browser", "client-in-chromium.mjs"));
        info.Environment["PUSH_BROWSER_TEST"] = input;
        using var process = Process.Start(info) ?? throw new InvalidOperationException("node did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        var text = await stdout;
        Assert.True(process.ExitCode == 0, $"the browser run failed ({process.ExitCode}):\n{text}\n{await stderr}");
        return JsonDocument.Parse(text.Trim().Split('\n')[^1]).RootElement.Clone();
    }
}
