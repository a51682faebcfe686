using System.Globalization;
using System.Text.Json;
using PushService.IntegrationTests.Infrastructure;

namespace PushService.IntegrationTests;

/// <summary>
/// The load generator behind docs/benchmarks.md, run as a process against real nodes on Redis, as
/// <c>loadtests/compare.sh</c> runs it: its counts are the deliveries that happened, a loss shows as one, the nodes' CPU
/// and memory are read from their processes, the peers it compares against (SignalR, Socket.IO) deliver across nodes,
/// and bad options get a clear refusal.
/// </summary>
public sealed class LoadGeneratorTests
{
    // 40 connections on 2 of 4 channels each: every channel has 20 subscribers, half of them on the second node.
    private const int Connections = 40;
    private const int SubscribersPerChannel = 20;

    [Fact]
    public async Task Fanout_OverTwoNodes_CountsEveryDeliveryOnce_AndReadsTheNodesCpu()
    {
        await using var cluster = await TestCluster.StartAsync(2);

        var run = await LoadGenerator.RunAsync(Fanout("pushservice", cluster.Nodes.Select(n => n.WebSocketUri), cluster.Nodes[0].BaseAddress, cluster.Nodes.Select(n => n.Pid)));

        Assert.True(run.ExitCode == 0, run.StandardError);
        var expected = run.Count("expected");
        Assert.True(expected > 0, "nothing was published");
        Assert.Equal(0, expected % SubscribersPerChannel);
        Assert.Equal(expected, run.Count("received"));
        Assert.Equal(0, run.Count("lost"));
        Assert.Equal(0, run.Count("outOfOrder"));
        Assert.Equal(0, run.Count("publishFailures"));
        Assert.True(run.Count("p50us") > 0);
        Assert.True(run.Count("p50us") <= run.Count("p99us") && run.Count("p99us") <= run.Count("maxus"));
        Assert.True(run.Figure("deliveriesPerSecond") > 0);
        Assert.True(run.Figure("gatewayCpuSeconds") > 0, "the nodes' CPU was not read");
        Assert.True(run.Figure("gatewayCpuUsPerDelivery") > 0);
        Assert.InRange(run.Figure("gatewayKernelCpuShare"), 0, 1);
        Assert.True(run.Count("publishP50us") > 0 && run.Count("publishP50us") <= run.Count("publishP99us"));
        Assert.True(run.Figure("loadgenCores") > 0, "the load generator's own CPU was not read");
        Assert.True(run.Count("loadgenGcs") >= 0 && run.Figure("loadgenGcPauseMs") >= 0);
    }

    [Fact]
    public async Task Fanout_WhenANodeDiesDuringTheRun_ReportsTheLostDeliveries_AndNoCpuFigure()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // Not quiet: the progress lines tell when every subscriber is in, and the second node dies right then.
        var running = LoadGenerator.RunAsync(
            Fanout("pushservice", cluster.Nodes.Select(n => n.WebSocketUri), cluster.Nodes[0].BaseAddress, cluster.Nodes.Select(n => n.Pid), quiet: false),
            line =>
            {
                if (line.StartsWith("connected ", StringComparison.Ordinal))
                {
                    connected.TrySetResult();
                }
            });
        await connected.Task.WaitAsync(TimeSpan.FromSeconds(60));
        cluster.Nodes[1].Kill();
        var run = await running;

        Assert.Equal(1, run.ExitCode);
        Assert.True(run.Count("lost") > 0, "the deliveries to the dead node's subscribers were not counted as lost");
        Assert.Equal(run.Count("expected") - run.Count("received"), run.Count("lost"));
        Assert.Equal(JsonValueKind.Null, run.Summary.GetProperty("gatewayCpuUsPerDelivery").ValueKind);
        Assert.Contains("has gone", run.StandardError, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("signalr")]
    [InlineData("socketio")]
    public async Task Peer_OverTwoNodesOnRedis_DeliversEveryMessage(string target)
    {
        await using var redis = await RedisServer.StartAsync();
        await using var first = await StartPeerAsync(target, redis.Configuration);
        await using var second = await StartPeerAsync(target, redis.Configuration);

        var run = await LoadGenerator.RunAsync(Fanout(target, [first.SubscribeUri, second.SubscribeUri], first.BaseAddress, [first.Pid, second.Pid]));

        Assert.True(run.ExitCode == 0, run.StandardError);
        var expected = run.Count("expected");
        Assert.True(expected > 0, "nothing was published");
        Assert.Equal(0, expected % SubscribersPerChannel);
        Assert.Equal(expected, run.Count("received"));
        Assert.Equal(0, run.Count("lost"));
        Assert.True(run.Count("p50us") > 0);
        Assert.True(run.Figure("gatewayCpuUsPerDelivery") > 0);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Idle_HoldsTheConnections_AndReadsTheNodesMemory(bool awaitConnect)
    {
        await using var cluster = await TestCluster.StartAsync(2);

        var run = await LoadGenerator.RunAsync(
        [
            "--target", "pushservice", "--scenario", "idle", "--quiet",
            "--ws", string.Join(',', cluster.Nodes.Select(n => n.WebSocketUri)),
            "--publish", cluster.Nodes[0].BaseAddress.ToString(),
            "--pids", string.Join(',', cluster.Nodes.Select(n => n.Pid)),
            "--connections", "200", "--warmup-connections", "20", "--duration", "1",
            .. awaitConnect ? new[] { "--await-connect" } : [],
        ]);

        Assert.True(run.ExitCode == 0, run.StandardError);
        Assert.Equal(200, run.Count("connections"));
        Assert.True(run.Figure("connectsPerSecond") > 0);
        var before = run.Count("rssBeforeKiB");
        var peak = run.Count("peakKiB");
        Assert.True(run.Count("rssColdKiB") > 0 && before > 0, "the nodes' memory was not read");
        Assert.True(peak >= run.Count("rssAfterKiB") && peak >= before, "the peak is below a reading taken before it");
        Assert.Equal(Math.Round((peak - before) / 200.0, 2), run.Figure("peakGrowthKiBPerConnection"));
    }

    [Fact]
    public async Task Churn_ConnectsAndDisconnectsAtTheRate_WithoutFailures()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        var node = cluster.Nodes[0];

        var run = await LoadGenerator.RunAsync(
        [
            "--target", "pushservice", "--scenario", "churn", "--quiet",
            "--ws", node.WebSocketUri.ToString(), "--publish", node.BaseAddress.ToString(), "--pids", node.Pid.ToString(CultureInfo.InvariantCulture),
            "--rate", "40", "--duration", "2",
        ]);

        Assert.True(run.ExitCode == 0, run.StandardError);
        Assert.True(run.Count("succeeded") > 0);
        Assert.Equal(0, run.Count("failed"));
        Assert.True(run.Figure("gatewayCpuUsPerConnect") > 0);
    }

    [Theory]
    [InlineData("--connections", "abc", "--connections: 'abc' is not a whole number of at least 1.")]
    [InlineData("--connections", "0", "--connections: '0' is not a whole number of at least 1.")]
    [InlineData("--rate", "-5", "--rate: '-5' is not a number")]
    [InlineData("--duration", "NaN", "--duration: 'NaN' is not a number")]
    [InlineData("--target", "centrifugo", "--target is pushservice, signalr, socketio; not 'centrifugo'.")]
    [InlineData("--ws", "http://127.0.0.1:1/ws", "--ws: 'http://127.0.0.1:1/ws' is not an absolute ws or wss URL.")]
    [InlineData("--pids", "4194305", "--pids: no process 4194305")]
    [InlineData("--frobnicate", "1", "Unknown option --frobnicate.")]
    public async Task BadOptions_AreRefused_WithExitCode2_AndAMessageNamingTheOption(string option, string value, string message)
    {
        var run = await LoadGenerator.RunAsync(["--ws", "ws://127.0.0.1:1/ws", option, value]);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains(message, run.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.StandardError, StringComparison.Ordinal);
        Assert.Equal("", run.StandardOutput);
    }

    [Fact]
    public async Task ANodeThatIsNotThere_IsReported_WithExitCode3_AndNoFigures()
    {
        var endpoint = $"ws://127.0.0.1:{FreePort.Next()}/ws";

        var run = await LoadGenerator.RunAsync(["--ws", endpoint, "--connections", "2", "--duration", "1", "--warmup", "0", "--quiet"]);

        Assert.Equal(3, run.ExitCode);
        Assert.Contains($"could not connect and subscribe at {endpoint}", run.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.StandardError, StringComparison.Ordinal);
        Assert.Equal("", run.StandardOutput);
    }

    private static Task<PeerProcess> StartPeerAsync(string target, string redis) =>
        target == "signalr" ? PeerProcess.StartSignalRAsync(redis) : PeerProcess.StartSocketIoAsync(redis);

    private static string[] Fanout(string target, IEnumerable<Uri> endpoints, Uri publish, IEnumerable<int> pids, bool quiet = true) =>
    [
        "--target", target, "--scenario", "fanout",
        "--ws", string.Join(',', endpoints),
        "--publish", publish.ToString(),
        "--pids", string.Join(',', pids),
        "--connections", Connections.ToString(CultureInfo.InvariantCulture), "--channels", "4", "--channels-per-connection", "2",
        "--rate", "50", "--warmup", "1", "--duration", "3", "--drain", "3",
        .. quiet ? new[] { "--quiet" } : [],
    ];
}
