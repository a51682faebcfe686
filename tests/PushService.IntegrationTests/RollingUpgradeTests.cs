using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using PushService.Client;
using PushService.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace PushService.IntegrationTests;

/// <summary>
/// A rolling upgrade as Kubernetes runs the chart's Deployment, on loopback: three gateway processes started with the
/// rendered container's arguments and environment behind a real HAProxy that health-checks the readiness path as the
/// rendered probe does, 3,000 SDK clients through it on 30 channels, steady REST publishing through it. Each old node
/// in turn: a new one starts and becomes ready (maxSurge 1, maxUnavailable 0), then the old one gets what the kubelet
/// does: endpoint removal, the preStop sleep, SIGTERM, SIGKILL if still alive after the grace period.
/// </summary>
/// <remarks>
/// The first old node runs the chart rendered with <c>drain.windowSeconds=0</c>, which closes every client at once:
/// its drain gives the all-at-once reconnect rate, measured in the same run as the two drains in waves it is compared
/// with. Reconnect rates are counted from the clients (a reconnect is a completed <c>connect</c> on a surviving node).
/// </remarks>
public sealed class RollingUpgradeTests(ITestOutputHelper output)
{
    private const int Clients = 3000;
    private const int Channels = 30;
    private static readonly TimeSpan RateWindow = TimeSpan.FromMilliseconds(500);

    [Fact]
    public async Task RollingUpgrade_ThroughALoadBalancer_LosesNoAcknowledgedMessage_ReconnectsEveryone_AndSpreadsTheReconnects()
    {
        await using var redis = await RedisServer.StartAsync();
        var backplane = $"redis.configuration={redis.Configuration}";
        var allAtOnce = await HelmChart.RenderAsync(sets: [backplane, "drain.windowSeconds=0"]);
        var waves = await HelmChart.RenderAsync(sets: [backplane]);
        Assert.True(allAtOnce.Succeeded && waves.Succeeded, allAtOnce.Render + "\n" + waves.Render);

        var probe = new RenderedPod(waves, "probe");
        var ports = Enumerable.Range(0, 6).Select(_ => FreePort.Next()).ToArray();
        await using var proxy = await HaProxy.StartAsync(ports, probe.ReadinessPath, probe.ReadinessPeriodSeconds, probe.ReadinessFailureThreshold);
        var nodes = new GatewayProcess?[6];
        var clients = new List<TrackedClient>();
        using var stop = new CancellationTokenSource();
        try
        {
            // The old release: slots 1-3.
            for (var i = 0; i < 3; i++)
            {
                nodes[i] = await StartPodAsync(i == 0 ? allAtOnce : waves, $"push-pushservice-old-{i + 1}", ports[i]);
            }

            for (var i = 0; i < 3; i++)
            {
                await proxy.WaitUntilUpAsync($"s{i + 1}", TimeSpan.FromSeconds(30));
            }

            clients = await ConnectClientsAsync(proxy.WebSocketUri);
            output.WriteLine($"clients per node: {string.Join(", ", clients.GroupBy(c => c.Client.NodeId).OrderBy(g => g.Key).Select(g => $"{g.Key} {g.Count()}"))}");

            var publisher = new Publisher(proxy.BaseAddress);
            var publishing = publisher.RunAsync(stop.Token);
            var sampler = new ReconnectSampler(clients);
            var sampling = sampler.RunAsync(stop.Token);
            await Task.Delay(TimeSpan.FromSeconds(2));

            var drains = new List<Drain>();
            for (var i = 0; i < 3; i++)
            {
                // The new pod first, ready in the load balancer, then the old one goes.
                nodes[3 + i] = await StartPodAsync(waves, $"push-pushservice-new-{i + 1}", ports[3 + i]);
                await proxy.WaitUntilUpAsync($"s{4 + i}", TimeSpan.FromSeconds(30));
                var old = nodes[i]!;
                var pod = new RenderedPod(i == 0 ? allAtOnce : waves, old.NodeId);
                var onIt = clients.Count(c => c.Client.NodeId == old.NodeId);
                var started = sampler.Now;
                var killed = await TerminateAsKubernetesDoesAsync(proxy, $"s{i + 1}", old, pod);
                await Poll.UntilAsync(() => clients.All(c => c.Client.IsConnected && c.Client.NodeId != old.NodeId), TimeSpan.FromSeconds(60),
                    () => $"after {old.NodeId} stopped, {clients.Count(c => !c.Client.IsConnected || c.Client.NodeId == old.NodeId)} clients are not back");
                await Task.Delay(TimeSpan.FromSeconds(1));
                var drain = new Drain(old.NodeId, i == 0 ? "all at once" : "in waves", onIt, sampler.PeakRate(started, sampler.Now, RateWindow),
                    sampler.Now - started, killed);
                drains.Add(drain);
                output.WriteLine(drain.ToString());
            }

            // Twenty more acknowledged publishes after the last drain, then everything acknowledged must have arrived.
            var target = publisher.Acknowledged.Count + 20;
            await Poll.UntilAsync(() => publisher.Acknowledged.Count >= target, TimeSpan.FromSeconds(30), () => "publishing did not go on");
            await stop.CancelAsync();
            await publishing;
            await sampling;

            var acknowledged = publisher.Acknowledged.ToArray();
            await Poll.UntilAsync(() => clients.All(c => c.HasAll(acknowledged)), TimeSpan.FromSeconds(30), () => "deliveries did not complete");
            var missing = clients.Sum(c => c.Missing(acknowledged));
            var duplicates = clients.Sum(c => c.Duplicates);
            var resets = clients.Sum(c => c.Resets);
            var allAtOnceRate = drains[0].PeakReconnectsPerSecond;
            var wavesRate = drains.Skip(1).Max(d => d.PeakReconnectsPerSecond);
            output.WriteLine($"acknowledged {acknowledged.Length}, publish failures {publisher.Failures} ({string.Join(" | ", publisher.FailureAnswers)}), " +
                $"missing {missing}, duplicates {duplicates}, resets {resets}");
            output.WriteLine($"peak reconnects/s: all at once {allAtOnceRate:F0}, in waves {wavesRate:F0} (ratio {wavesRate / allAtOnceRate:F2})");

            Assert.All(drains, d => Assert.False(d.Killed, $"{d.Node} was still running after its grace period"));
            Assert.Equal(0, missing);
            Assert.Equal(0, duplicates);
            Assert.Equal(0, resets);
            Assert.Equal(0, publisher.Failures);
            Assert.True(acknowledged.Length > 500, $"only {acknowledged.Length} publishes were acknowledged");
            Assert.All(clients, c => Assert.True(c.Client.Reconnects >= 1, "a client was never moved"));
            Assert.All(clients, c => Assert.StartsWith("push-pushservice-new-", c.Client.NodeId, StringComparison.Ordinal));
            Assert.True(wavesRate <= allAtOnceRate / 3, $"the peak reconnect rate in waves, {wavesRate:F0}/s, is more than a third of all at once, {allAtOnceRate:F0}/s");
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(clients.Select(c => c.Client.DisposeAsync().AsTask()));
            foreach (var node in nodes)
            {
                if (node is not null)
                {
                    await node.DisposeAsync();
                }
            }
        }
    }

    /// <summary>The pod's container on a loopback port: the rendered arguments and environment, the listen address its own.</summary>
    private static Task<GatewayProcess> StartPodAsync(HelmChart.Rendering rendering, string podName, int port)
    {
        var pod = new RenderedPod(rendering, podName);
        var arguments = pod.Arguments.Select(a => a.StartsWith("--urls=", StringComparison.Ordinal) ? $"--urls=http://127.0.0.1:{port}" : a).ToList();
        Assert.Contains($"--urls=http://127.0.0.1:{port}", arguments);
        return GatewayProcess.LaunchAsync(podName, arguments, pod.Environment.ToDictionary());
    }

    /// <summary>Endpoint removal and preStop together, SIGTERM after the sleep, SIGKILL at the end of the grace period.</summary>
    private static async Task<bool> TerminateAsKubernetesDoesAsync(HaProxy proxy, string slot, GatewayProcess node, RenderedPod pod)
    {
        var grace = Stopwatch.StartNew();
        await proxy.RemoveAsync(slot);
        await Task.Delay(TimeSpan.FromSeconds(pod.PreStopSleepSeconds));
        await node.SignalTerminateAsync();
        if (await node.WaitForExitAsync(TimeSpan.FromSeconds(pod.TerminationGracePeriodSeconds) - grace.Elapsed))
        {
            return false;
        }

        node.Kill();
        return true;
    }

    private static async Task<List<TrackedClient>> ConnectClientsAsync(Uri endpoint)
    {
        var clients = new TrackedClient[Clients];
        using var gate = new SemaphoreSlim(50);
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(async i =>
        {
            await gate.WaitAsync();
            try
            {
                clients[i] = await TrackedClient.StartAsync(endpoint, $"roll-{i % Channels}");
            }
            finally
            {
                gate.Release();
            }
        }));
        return [.. clients];
    }

    private sealed record Drain(string Node, string How, int Clients, double PeakReconnectsPerSecond, TimeSpan Took, bool Killed)
    {
        public override string ToString() =>
            $"{Node} drained {How}: {Clients} clients, peak {PeakReconnectsPerSecond:F0} reconnects/s, {Took.TotalSeconds:F1} s from endpoint removal to all back{(Killed ? ", KILLED" : "")}";
    }

    /// <summary>An SDK client on one channel, recording every sequence number it was given.</summary>
    private sealed class TrackedClient
    {
        private readonly HashSet<int> _seen = [];
        private int _duplicates;
        private int _resets;

        private TrackedClient(PushClient client, string channel)
        {
            Client = client;
            Channel = channel;
        }

        public PushClient Client { get; }

        public string Channel { get; }

        public int Duplicates => Volatile.Read(ref _duplicates);

        public int Resets => Volatile.Read(ref _resets);

        public static async Task<TrackedClient> StartAsync(Uri endpoint, string channel)
        {
            var options = new PushClientOptions();
            options.Endpoints.Add(endpoint);
            var client = new PushClient(options);
            await client.ConnectAsync();
            var tracked = new TrackedClient(client, channel);
            var subscription = await client.SubscribeAsync(channel);
            _ = tracked.ReadAsync(subscription);
            return tracked;
        }

        private async Task ReadAsync(PushSubscription subscription)
        {
            await foreach (var message in subscription.Events.ReadAllAsync())
            {
                switch (message.Kind)
                {
                    case ChannelEventKind.Message:
                        lock (_seen)
                        {
                            if (!_seen.Add(message.Data.GetProperty("seq").GetInt32()))
                            {
                                _duplicates++;
                            }
                        }

                        break;
                    case ChannelEventKind.Reset:
                        Interlocked.Increment(ref _resets);
                        break;
                }
            }
        }

        public int Missing(IEnumerable<KeyValuePair<int, string>> acknowledged)
        {
            lock (_seen)
            {
                return acknowledged.Count(a => a.Value == Channel && !_seen.Contains(a.Key));
            }
        }

        public bool HasAll(IEnumerable<KeyValuePair<int, string>> acknowledged) => Missing(acknowledged) == 0;
    }

    /// <summary>REST publishes through the load balancer every 20 ms, round-robin over the channels, never retried.</summary>
    private sealed class Publisher(Uri baseAddress)
    {
        private readonly HttpClient _http = new() { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(10) };
        private int _failures;

        /// <summary>Sequence numbers answered 200, with their channel.</summary>
        public ConcurrentDictionary<int, string> Acknowledged { get; } = new();

        public int Failures => Volatile.Read(ref _failures);

        public ConcurrentQueue<string> FailureAnswers { get; } = new();

        public async Task RunAsync(CancellationToken stop)
        {
            for (var sequence = 1; !stop.IsCancellationRequested; sequence++)
            {
                var channel = $"roll-{sequence % Channels}";
                try
                {
                    using var body = new StringContent($"{{\"data\":{{\"seq\":{sequence}}}}}", Encoding.UTF8, "application/json");
                    using var response = await _http.PostAsync(new Uri($"/api/v1/channels/{channel}/messages", UriKind.Relative), body, CancellationToken.None);
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        Acknowledged[sequence] = channel;
                    }
                    else
                    {
                        Fail($"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(CancellationToken.None)}");
                    }
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                {
                    Fail(ex.Message);
                }

                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(20), stop);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }

        private void Fail(string answer)
        {
            if (Interlocked.Increment(ref _failures) <= 3)
            {
                FailureAnswers.Enqueue(answer);
            }
        }
    }

    /// <summary>The clients' completed reconnects, summed every 50 ms.</summary>
    private sealed class ReconnectSampler(IReadOnlyList<TrackedClient> clients)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly List<(TimeSpan At, long Reconnects)> _samples = [];

        public TimeSpan Now => _clock.Elapsed;

        public async Task RunAsync(CancellationToken stop)
        {
            while (!stop.IsCancellationRequested)
            {
                long total = 0;
                foreach (var client in clients)
                {
                    total += client.Client.Reconnects;
                }

                lock (_samples)
                {
                    _samples.Add((_clock.Elapsed, total));
                }

                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(50), stop);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }

        /// <summary>The most reconnects in any window of <paramref name="window"/> between the two times, per second.</summary>
        public double PeakRate(TimeSpan from, TimeSpan to, TimeSpan window)
        {
            List<(TimeSpan At, long Reconnects)> samples;
            lock (_samples)
            {
                samples = _samples.Where(s => s.At >= from && s.At <= to).ToList();
            }

            var peak = 0.0;
            for (int i = 0, j = 0; i < samples.Count; i++)
            {
                while (j < samples.Count && samples[j].At - samples[i].At < window)
                {
                    j++;
                }

                if (j == samples.Count)
                {
                    break;
                }

                peak = Math.Max(peak, (samples[j].Reconnects - samples[i].Reconnects) / (samples[j].At - samples[i].At).TotalSeconds);
            }

            return peak;
        }
    }
}
