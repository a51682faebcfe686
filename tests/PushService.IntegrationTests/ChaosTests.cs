using System.Globalization;
using System.Text.Json;
using PushService.IntegrationTests.Infrastructure;
using PushService.Testing;
using Xunit.Abstractions;

namespace PushService.IntegrationTests;

/// <summary>
/// Redis failing under steady publishing, many times over, counted: two gateway processes on one real redis-server
/// (AOF written before every reply), a plain contract client on node B that never resubscribes, REST publishes every
/// 20 ms to node A. Every publish answered 200 must reach the client, in offset order, once, and the client must never
/// be told to resubscribe: the node fills what it missed from history by itself.
/// </summary>
public sealed class ChaosTests(ITestOutputHelper output)
{
    public enum Fault
    {
        /// <summary>SIGKILL, restarted on the same port and data 3 s later.</summary>
        Kill,

        /// <summary><c>CLIENT PAUSE 3000 ALL</c>: every client's commands wait 3 s.</summary>
        ClientPause,

        /// <summary>SIGSTOP, SIGCONT 3 s later: the server freezes with every socket open.</summary>
        Freeze,
    }

    private static readonly TimeSpan Before = TimeSpan.FromSeconds(1.5);
    private static readonly TimeSpan Outage = TimeSpan.FromSeconds(3);

    [Theory]
    [InlineData(Fault.Kill, true, 20)]
    [InlineData(Fault.Kill, false, 5)]
    [InlineData(Fault.ClientPause, true, 5)]
    [InlineData(Fault.ClientPause, false, 5)]
    [InlineData(Fault.Freeze, true, 5)]
    [InlineData(Fault.Freeze, false, 5)]
    public async Task RedisFault_UnderSteadyPublishing_APlainSubscriberMissesNothing_AndIsNeverToldToResubscribe(Fault fault, bool ownConnections, int runs)
    {
        var settings = new Dictionary<string, string>
        {
            ["PushService:Redis:BypassLibrarySubscriptions"] = ownConnections.ToString(),
            ["PushService:Redis:BypassLibraryPublish"] = ownConnections.ToString(),
        };
        await using var cluster = await TestCluster.StartAsync(2, settings);
        var results = new List<RunResult>();
        for (var run = 1; run <= runs; run++)
        {
            var result = await RunOnceAsync(cluster.Nodes, publisher => FaultAsync(cluster.Redis, fault, publisher), $"chaos-{fault}-{run}".ToLowerInvariant());
            results.Add(result);
            output.WriteLine($"run {run}: {result}");
        }

        AssertClean(results, $"{fault}, own connections {ownConnections}");
    }

    /// <summary>
    /// One run: a plain client subscribed on the second node, publishing to the first every 20 ms, <paramref name="fault"/>
    /// 1.5 s in; once every node is ready again and 20 more publishes were answered 200, what the client received is
    /// counted against what was acknowledged.
    /// </summary>
    private static async Task<RunResult> RunOnceAsync(IReadOnlyList<GatewayProcess> nodes, Func<SteadyPublisher, Task> fault, string channel)
    {
        await using var client = await TestClient.OpenAsync(nodes[1].WebSocketUri);
        await client.ResultAsync(new { op = "connect" });
        await client.ResultAsync(new { op = "subscribe", channel });

        // To the first node only: the client is on the second, so every delivery crosses Redis.
        var publisher = new SteadyPublisher(nodes, channel, TimeSpan.FromMilliseconds(20)) { UseNode = i => i == 0 };
        using var stop = new CancellationTokenSource();
        var publishing = publisher.RunAsync(stop.Token);
        await Task.Delay(Before);
        await fault(publisher);
        foreach (var node in nodes)
        {
            await node.WaitUntilReadyAsync(TimeSpan.FromSeconds(30));
        }

        var target = publisher.Acknowledged.Count + 20;
        await Poll.UntilAsync(() => publisher.Acknowledged.Count >= target, TimeSpan.FromSeconds(30),
            () => $"{channel}: publishing did not resume ({publisher.Acknowledged.Count} acknowledged)");
        await stop.CancelAsync();
        await publishing;

        var acknowledged = publisher.Acknowledged.Keys.ToHashSet();
        var seen = new HashSet<int>();
        var offsets = new List<long>();
        var unsubscribed = 0;
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!acknowledged.IsSubsetOf(seen) && !deadline.IsCancellationRequested)
        {
            JsonElement push;
            try
            {
                push = await client.NextPushAsync(TimeSpan.FromSeconds(20));
            }
            catch (OperationCanceledException)
            {
                break;
            }

            switch (push.GetProperty("type").GetString())
            {
                case "message":
                    offsets.Add(push.GetProperty("offset").GetInt64());
                    seen.Add(push.GetProperty("data").GetProperty("seq").GetInt32());
                    break;
                case "unsubscribed":
                    unsubscribed++;
                    break;
            }
        }

        // A reset that came after the last acknowledged message counts too.
        await Task.Delay(200);
        unsubscribed += client.DrainPushes().Count(p => p.GetProperty("type").GetString() == "unsubscribed");

        // Offsets as received: 1, 2, 3, … with none skipped and none twice (unacknowledged publishes that Redis did
        // store, after a timeout, count too: they are in the channel's history).
        var outOfOrder = offsets.Where((o, i) => o != i + 1).Count();
        (int, string)? closed = client.State == System.Net.WebSockets.WebSocketState.Open ? null : await client.ClosedAsync(TimeSpan.FromSeconds(1));
        return new RunResult(acknowledged.Count, acknowledged.Count(a => !seen.Contains(a)), unsubscribed, outOfOrder, publisher.Unavailable,
            publisher.RetryAfterMissing, publisher.OtherFailures, closed, string.Join(" | ", publisher.OtherAnswers));
    }

    /// <summary>
    /// The fault, and 3 s later its end; held (up to 10 s more) until the node has refused a publish, so every run's outage
    /// is one the publisher saw: on a loaded machine a publisher that stalled through the first seconds would otherwise
    /// send its next publish so late that Redis answers it within the 2 s operation timeout.
    /// </summary>
    private static async Task FaultAsync(RedisServer redis, Fault fault, SteadyPublisher publisher)
    {
        var refusedBefore = publisher.Unavailable;
        async Task HoldUntilRefusedAsync()
        {
            await Task.Delay(Outage);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (publisher.Unavailable == refusedBefore && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
        }

        switch (fault)
        {
            case Fault.Kill:
                redis.Kill();
                await HoldUntilRefusedAsync();
                await redis.LaunchAsync();
                break;
            case Fault.ClientPause:
                // A pause ends by itself after its time; another follows while no publish has been refused yet.
                for (var pause = 0; pause < 4 && (pause == 0 || publisher.Unavailable == refusedBefore); pause++)
                {
                    Assert.Equal("+OK", await redis.CommandAsync("CLIENT", "PAUSE", ((long)Outage.TotalMilliseconds).ToString(CultureInfo.InvariantCulture), "ALL"));
                    await Task.Delay(Outage);
                }

                break;
            case Fault.Freeze:
                await redis.SignalAsync("STOP");
                await HoldUntilRefusedAsync();
                await redis.SignalAsync("CONT");
                break;
        }
    }

    /// <summary>
    /// Sentinel: the primary SIGKILLed during steady publishing, its replica promoted, the old primary restarted (it
    /// comes back as the new primary's replica). With <c>MinReplicas=1</c> a publish is answered 200 only once the
    /// replica holds it, so none is lost with the primary; the gateways follow the failover by themselves. Three
    /// failovers in a row, back and forth.
    /// </summary>
    [Fact]
    public async Task SentinelFailover_PrimaryKilledDuringSteadyPublishing_APlainSubscriberMissesNothing()
    {
        await using var sentinels = await RedisSentinelSet.StartAsync();
        var settings = new Dictionary<string, string> { ["PushService:Redis:MinReplicas"] = "1" };
        var nodes = await Task.WhenAll(Enumerable.Range(1, 2).Select(i => GatewayProcess.StartAsync($"node-{i}", sentinels.Configuration, settings)));
        try
        {
            var results = new List<RunResult>();
            for (var run = 1; run <= 3; run++)
            {
                var result = await RunOnceAsync(nodes, async _ =>
                {
                    var primary = await sentinels.CurrentPrimaryAsync();
                    var before = primary.Port;
                    primary.Kill();
                    await Poll.UntilAsync(async () => await sentinels.PrimaryPortAsync() != before, TimeSpan.FromSeconds(30),
                        () => "the Sentinels did not promote the replica");
                    await primary.LaunchAsync();
                }, $"sentinel-{run}");
                results.Add(result);
                output.WriteLine($"failover {run}: {result}");
            }

            AssertClean(results, "Sentinel failover");
        }
        finally
        {
            await StopAsync(nodes);
        }
    }

    /// <summary>
    /// Redis Cluster, three masters with a replica each: the master of the channel's slot SIGKILLed during steady
    /// publishing, its replica promoted by the cluster, the old master restarted (it rejoins as a replica). The gateways
    /// follow the new slot map and their sharded subscriptions move with the slot; with <c>MinReplicas=1</c> no publish
    /// answered 200 is lost. Three failovers in a row, each of the channel's current master.
    /// </summary>
    [Fact]
    public async Task ClusterFailover_AChannelsMasterKilledDuringSteadyPublishing_APlainSubscriberMissesNothing()
    {
        await using var redis = await RedisClusterSet.StartAsync(replicas: 1, "--min-replicas-to-write", "1", "--min-replicas-max-lag", "10");
        var settings = new Dictionary<string, string> { ["PushService:Redis:MinReplicas"] = "1" };
        var nodes = await Task.WhenAll(Enumerable.Range(1, 2).Select(i => GatewayProcess.StartAsync($"node-{i}", redis.Configuration, settings)));
        try
        {
            var results = new List<RunResult>();
            for (var run = 1; run <= 3; run++)
            {
                var channel = $"cluster-{run}";
                var key = $"ps:{{{channel}}}:m";
                var result = await RunOnceAsync(nodes, async _ =>
                {
                    var master = await redis.MasterOfAsync(key) ?? throw new InvalidOperationException($"No master serves {key}.");
                    master.Kill();
                    await Poll.UntilAsync(async () => await redis.MasterOfAsync(key) is { } promoted && promoted != master, TimeSpan.FromSeconds(30),
                        () => "the cluster did not promote the replica");
                    await master.LaunchAsync();
                    await redis.WaitUntilHealthyAsync(replicas: 1);
                }, channel);
                results.Add(result);
                output.WriteLine($"failover {run}: {result}");
            }

            AssertClean(results, "Redis Cluster failover");
        }
        finally
        {
            await StopAsync(nodes);
        }
    }

    /// <summary>Stops the nodes, writing what they logged (without stack frames): why a publish failed, what a node declared lost.</summary>
    private async Task StopAsync(GatewayProcess[] nodes)
    {
        foreach (var node in nodes)
        {
            output.WriteLine(string.Join('\n', node.Output.Split('\n').Where(line => !line.TrimStart().StartsWith("at ", StringComparison.Ordinal))));
            await node.DisposeAsync();
        }
    }

    private void AssertClean(List<RunResult> results, string what)
    {
        var summary = string.Join('\n', results.Select((r, i) => $"run {i + 1}: {r}"));
        output.WriteLine($"{what}: {results.Count} runs, {results.Sum(r => r.Acknowledged)} acknowledged, "
            + $"{results.Sum(r => r.Missing)} missing, {results.Sum(r => r.Unsubscribed)} unsubscribed, {results.Sum(r => r.Refused)} refused with 503");
        Assert.True(results.All(r => r.Missing == 0), $"acknowledged publications missing:\n{summary}");
        Assert.True(results.All(r => r.Unsubscribed == 0), $"the client was told to resubscribe:\n{summary}");
        Assert.True(results.All(r => r.OutOfOrder == 0), $"offsets out of order or repeated:\n{summary}");
        Assert.True(results.All(r => r.Closed is null), $"the client's connection was closed:\n{summary}");
        Assert.True(results.All(r => r.RetryAfterMissing == 0 && r.OtherFailures == 0), $"publishes failed other than with 503 and Retry-After:\n{summary}");

        // The outage was real: publishing was refused (or timed out into a 503) while Redis could not serve it.
        Assert.All(results, r => Assert.True(r.Refused > 0, $"no publish was refused during the outage:\n{summary}"));
    }

    private sealed record RunResult(int Acknowledged, int Missing, int Unsubscribed, int OutOfOrder, int Refused, int RetryAfterMissing,
        int OtherFailures, (int Code, string Reason)? Closed, string OtherAnswers)
    {
        public override string ToString() =>
            $"{Acknowledged} acknowledged, {Missing} missing, {Unsubscribed} unsubscribed, {OutOfOrder} out of order, {Refused} refused"
            + (RetryAfterMissing + OtherFailures > 0 ? $", {RetryAfterMissing} without Retry-After, {OtherFailures} other failures ({OtherAnswers})" : "")
            + (Closed is { } c ? $", closed {c.Code} {c.Reason}" : "");
    }
}
