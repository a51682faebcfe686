// PushService load generator: opens subscribers over several nodes, publishes through REST at a fixed rate, and reports
// throughput, end-to-end latency, loss and gateway CPU per delivery. Runs against PushService or a peer (SignalR,
// Socket.IO) with the same scenario, so they are measured in one run. See loadtests/README.md.
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using HdrHistogram;
using PushService.LoadGen;

LoadOptions options;
try
{
    options = LoadOptions.Parse(args);
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine($"loadgen: {ex.Message}");
    return 2;
}

var publishBase = options.PublishUrl ?? new Uri(options.Endpoints[0].GetLeftPart(UriPartial.Authority).Replace("ws", "http", StringComparison.Ordinal) + "/");
using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256, PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
{
    BaseAddress = publishBase,
    Timeout = TimeSpan.FromSeconds(30),
};
if (options.ApiKey is not null)
{
    http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", options.ApiKey);
}

ITarget target = options.Target switch
{
    "pushservice" => new PushServiceTarget(http, options.AwaitConnect),
    "signalr" => new SignalRTarget(http),
    "socketio" => new SocketIoTarget(http),
    _ => throw new ArgumentException("--target is pushservice, signalr or socketio"),
};

Dictionary<string, object?> summary;
try
{
    summary = options.Scenario switch
    {
        "fanout" => await Scenarios.FanoutAsync(options, target),
        "idle" => await Scenarios.IdleAsync(options, target),
        "churn" => await Scenarios.ChurnAsync(options, target),
        _ => throw new ArgumentException("--scenario is fanout, idle or churn"),
    };
}
catch (SubscribeFailedException ex)
{
    // No figure is worth printing when not every subscriber is there: the deliveries it expects would be wrong.
    Console.Error.WriteLine($"loadgen: {ex.Message}");
    return 3;
}

Console.WriteLine(JsonSerializer.Serialize(summary));
return summary.TryGetValue("lost", out var lost) && Convert.ToInt64(lost, CultureInfo.InvariantCulture) > 0 ? 1 : 0;

internal static class Scenarios
{
    public static async Task<Dictionary<string, object?>> FanoutAsync(LoadOptions options, ITarget target)
    {
        var metrics = new DeliveryMetrics();
        var (subscribers, connectSeconds) = await ConnectAllAsync(options, target, metrics);
        var perChannel = new int[options.Channels];
        for (var i = 0; i < options.Connections; i++)
        {
            foreach (var channel in options.ChannelsOf(i))
            {
                perChannel[int.Parse(channel.AsSpan(4), CultureInfo.InvariantCulture)]++;
            }
        }

        var pad = new string('x', options.PayloadBytes);
        long expected = 0, published = 0, acked = 0, failed = 0;
        using var inFlight = new SemaphoreSlim(512);
        var pending = new List<Task>();
        var total = options.Warmup + options.Duration;
        var clock = Stopwatch.StartNew();
        var windowStarted = false;
        double windowStart = 0, windowEnd = 0;
        CpuTime? cpuStart = null;
        var ownCpuStart = TimeSpan.Zero;
        var ownGcPauseStart = TimeSpan.Zero;
        var ownGcsStart = 0;
        long publishedAtWindowStart = 0, publishedAtWindowEnd = 0;
        var nextProgress = TimeSpan.FromSeconds(1);
        while (clock.Elapsed < total)
        {
            if (!windowStarted && clock.Elapsed >= options.Warmup)
            {
                windowStarted = true;
                metrics.StartWindow();
                cpuStart = ProcessStats.Cpu(options.Pids);
                ownCpuStart = Process.GetCurrentProcess().TotalProcessorTime;
                ownGcPauseStart = GC.GetTotalPauseDuration();
                ownGcsStart = GC.CollectionCount(0);
                windowStart = clock.Elapsed.TotalSeconds;
                publishedAtWindowStart = Interlocked.Read(ref acked);
            }

            var due = (long)(clock.Elapsed.TotalSeconds * options.Rate) - published;
            for (var i = 0; i < due; i++)
            {
                var index = (int)(published++ % options.Channels);
                var payload = $"{{\"ts\":{Stopwatch.GetTimestamp()},\"pad\":\"{pad}\"}}";
                await inFlight.WaitAsync();
                pending.Add(PublishOneAsync(index, payload));
            }

            if (pending.Count > 4096)
            {
                pending.RemoveAll(t => t.IsCompleted);
            }

            if (!options.Quiet && clock.Elapsed >= nextProgress)
            {
                nextProgress += TimeSpan.FromSeconds(1);
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"t={clock.Elapsed.TotalSeconds:F0}s published={published} acked={Interlocked.Read(ref acked)} delivered={metrics.Received} expected={Interlocked.Read(ref expected)} p99={(windowStarted && metrics.Latency.TotalCount > 0 ? metrics.Latency.GetValueAtPercentile(99) : 0)}us"));
            }

            await Task.Delay(2);
        }

        metrics.StopWindow();
        var cpuEnd = ProcessStats.Cpu(options.Pids);
        var ownCpu = Process.GetCurrentProcess().TotalProcessorTime - ownCpuStart;
        var ownGcPause = GC.GetTotalPauseDuration() - ownGcPauseStart;
        var ownGcs = GC.CollectionCount(0) - ownGcsStart;
        windowEnd = clock.Elapsed.TotalSeconds;
        publishedAtWindowEnd = Interlocked.Read(ref acked);
        var windowDeliveries = metrics.WindowReceived;
        await Task.WhenAll(pending);

        // Let the tail arrive, then count what never did.
        var drain = Stopwatch.StartNew();
        while (metrics.Received < Interlocked.Read(ref expected) && drain.Elapsed < options.Drain)
        {
            await Task.Delay(50);
        }

        await DisposeAllAsync(subscribers);
        var window = windowEnd - windowStart;
        var cpu = cpuEnd - cpuStart;
        if (cpu is null && options.Pids.Count > 0)
        {
            Console.Error.WriteLine("loadgen: a process of --pids has gone; no CPU figure for this run.");
        }

        return new Dictionary<string, object?>
        {
            ["target"] = options.Target,
            ["scenario"] = "fanout",
            ["connections"] = options.Connections,
            ["channels"] = options.Channels,
            ["channelsPerConnection"] = options.ChannelsPerConnection,
            ["rate"] = options.Rate,
            ["achievedPublishRate"] = Math.Round((publishedAtWindowEnd - publishedAtWindowStart) / window, 1),
            ["deliveriesPerSecond"] = Math.Round(windowDeliveries / window, 0),
            ["p50us"] = metrics.Latency.GetValueAtPercentile(50),
            ["p90us"] = metrics.Latency.GetValueAtPercentile(90),
            ["p99us"] = metrics.Latency.GetValueAtPercentile(99),
            ["maxus"] = metrics.Latency.GetMaxValue(),
            ["publishP50us"] = metrics.PublishLatency.GetValueAtPercentile(50),
            ["publishP99us"] = metrics.PublishLatency.GetValueAtPercentile(99),
            ["expected"] = Interlocked.Read(ref expected),
            ["received"] = metrics.Received,
            ["lost"] = Math.Max(0, Interlocked.Read(ref expected) - metrics.Received),
            ["outOfOrder"] = metrics.OutOfOrder,
            ["publishFailures"] = Interlocked.Read(ref failed),
            ["connectsPerSecond"] = Math.Round(options.Connections / connectSeconds, 0),
            ["gatewayCpuSeconds"] = cpu is { } used ? Math.Round(used.Total, 3) : null,
            ["gatewayCpuUsPerDelivery"] = cpu is { } perDelivery && windowDeliveries > 0 ? Math.Round(perDelivery.Total * 1e6 / windowDeliveries, 3) : null,
            ["gatewayKernelCpuShare"] = cpu is { Total: > 0 } split ? Math.Round(split.System / split.Total, 2) : null,
            ["windowSeconds"] = Math.Round(window, 2),

            // The load generator shares the cores and its receive loops are inside every latency figure: what it used
            // and how long its own collections paused it tell how much of a tail is the instrument's.
            ["loadgenCores"] = Math.Round(ownCpu.TotalSeconds / window, 2),
            ["loadgenGcs"] = ownGcs,
            ["loadgenGcPauseMs"] = Math.Round(ownGcPause.TotalMilliseconds, 1),
        };

        async Task PublishOneAsync(int channelIndex, string payload)
        {
            try
            {
                var started = Stopwatch.GetTimestamp();
                if (await target.PublishAsync(LoadOptions.ChannelName(channelIndex), payload, CancellationToken.None))
                {
                    metrics.Published(started);
                    Interlocked.Increment(ref acked);
                    Interlocked.Add(ref expected, perChannel[channelIndex]);
                }
                else
                {
                    Interlocked.Increment(ref failed);
                }
            }
            catch (HttpRequestException)
            {
                Interlocked.Increment(ref failed);
            }
            finally
            {
                inFlight.Release();
            }
        }
    }

    public static async Task<Dictionary<string, object?>> IdleAsync(LoadOptions options, ITarget target)
    {
        GC.Collect();
        var cold = ProcessStats.MemoryKiB(options.Pids, "VmRSS");
        var metrics = new DeliveryMetrics();

        // The warm-up: a few connections opened and closed first pay the one-time costs (code compiled on first use,
        // the crypto library paged in by the first handshake, pools created), so the figure is what connections cost.
        // Kept small next to the measured count, so what the warm-up leaves for reuse barely moves the figure.
        if (options.WarmupConnections > 0)
        {
            var (warmup, _) = await ConnectAllAsync(options, target, metrics, 0, options.WarmupConnections);
            await Task.Delay(TimeSpan.FromSeconds(1));
            await DisposeAllAsync(warmup);
            await Task.Delay(TimeSpan.FromSeconds(2));
        }

        var before = ProcessStats.MemoryKiB(options.Pids, "VmRSS");

        // Opened in two halves, RSS read between them: the second half's growth is the marginal cost of a connection,
        // without the one-time costs the first connections pay (code compiled, pools and tables sized).
        var half = options.Connections / 2;
        var (firstHalf, firstSeconds) = await ConnectAllAsync(options, target, metrics, 0, half);
        await Task.Delay(TimeSpan.FromSeconds(2));
        var middle = ProcessStats.MemoryKiB(options.Pids, "VmRSS");
        var (secondHalf, secondSeconds) = await ConnectAllAsync(options, target, metrics, half, options.Connections - half);
        List<IAsyncDisposable> subscribers = [.. firstHalf, .. secondHalf];
        var connectSeconds = firstSeconds + secondSeconds;
        await Task.Delay(options.Duration);
        var after = ProcessStats.MemoryKiB(options.Pids, "VmRSS");
        var peak = ProcessStats.MemoryKiB(options.Pids, "VmHWM");
        await DisposeAllAsync(subscribers);
        return new Dictionary<string, object?>
        {
            ["target"] = options.Target,
            ["scenario"] = "idle",
            ["connections"] = options.Connections,
            ["connectsPerSecond"] = Math.Round(options.Connections / connectSeconds, 0),
            ["warmupConnections"] = options.WarmupConnections,
            ["rssColdKiB"] = cold,
            ["rssBeforeKiB"] = before,
            ["rssAfterKiB"] = after,
            ["peakKiB"] = peak,
            ["rssGrowthKiBPerConnection"] = PerConnection(after - before, options.Connections),
            ["peakGrowthKiBPerConnection"] = PerConnection(peak - before, options.Connections),
            ["coldPeakGrowthKiBPerConnection"] = PerConnection(peak - cold, options.Connections),
            ["rssMiddleKiB"] = middle,
            ["marginalKiBPerConnection"] = PerConnection(after - middle, options.Connections - half),
        };
    }

    public static async Task<Dictionary<string, object?>> ChurnAsync(LoadOptions options, ITarget target)
    {
        var metrics = new DeliveryMetrics();
        long succeeded = 0, failedConnects = 0, started = 0;
        var clock = Stopwatch.StartNew();
        var tasks = new List<Task>();
        using var parallel = new SemaphoreSlim(options.ConnectParallelism);

        // Measured like the other scenarios: after a warm-up at the same rate, so code compiled on first use and pools
        // grown by the first connects are left out of the CPU per connect.
        var total = options.Warmup + options.Duration;
        var windowStarted = false;
        CpuTime? cpuStart = null;
        long succeededAtStart = 0, failedAtStart = 0;
        var windowStart = TimeSpan.Zero;
        while (clock.Elapsed < total)
        {
            if (!windowStarted && clock.Elapsed >= options.Warmup)
            {
                windowStarted = true;
                cpuStart = ProcessStats.Cpu(options.Pids);
                succeededAtStart = Interlocked.Read(ref succeeded);
                failedAtStart = Interlocked.Read(ref failedConnects);
                windowStart = clock.Elapsed;
            }

            var due = (long)(clock.Elapsed.TotalSeconds * options.Rate) - started;
            for (var i = 0; i < due; i++)
            {
                var index = (int)started++;
                await parallel.WaitAsync();
                tasks.Add(Task.Run(async () =>
                {
                    try
                    {
                        var subscriber = await target.SubscribeAsync(options.Endpoints[index % options.Endpoints.Count], [.. options.ChannelsOf(index)], metrics, CancellationToken.None);
                        await subscriber.DisposeAsync();
                        Interlocked.Increment(ref succeeded);
                    }
                    catch (Exception ex) when (ex is not OutOfMemoryException)
                    {
                        Interlocked.Increment(ref failedConnects);
                    }
                    finally
                    {
                        parallel.Release();
                    }
                }));
            }

            await Task.Delay(5);
        }

        var window = (clock.Elapsed - windowStart).TotalSeconds;
        var cpu = ProcessStats.Cpu(options.Pids) - cpuStart;
        var inWindow = Interlocked.Read(ref succeeded) - succeededAtStart;
        await Task.WhenAll(tasks);
        return new Dictionary<string, object?>
        {
            ["target"] = options.Target,
            ["scenario"] = "churn",
            ["rate"] = options.Rate,
            ["succeeded"] = succeeded,
            ["failed"] = failedConnects,
            ["failedInWindow"] = failedConnects - failedAtStart,
            ["achievedConnectsPerSecond"] = Math.Round(inWindow / window, 1),
            ["gatewayCpuUsPerConnect"] = cpu is { } used && inWindow > 0 ? Math.Round(used.Total * 1e6 / inWindow, 1) : null,
            ["gatewayKernelCpuShare"] = cpu is { Total: > 0 } split ? Math.Round(split.System / split.Total, 2) : null,
            ["windowSeconds"] = Math.Round(window, 2),
        };
    }

    private static double? PerConnection(long? kib, int connections) => kib is { } growth ? Math.Round(growth / (double)connections, 2) : null;

    private static Task<(List<IAsyncDisposable> Subscribers, double Seconds)> ConnectAllAsync(LoadOptions options, ITarget target, DeliveryMetrics metrics) =>
        ConnectAllAsync(options, target, metrics, 0, options.Connections);

    /// <summary>Opens subscribers <paramref name="first"/> to <paramref name="first"/> + <paramref name="count"/> - 1.</summary>
    private static async Task<(List<IAsyncDisposable> Subscribers, double Seconds)> ConnectAllAsync(LoadOptions options, ITarget target, DeliveryMetrics metrics, int first, int count)
    {
        var subscribers = new IAsyncDisposable[count];
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(first, count), new ParallelOptions { MaxDegreeOfParallelism = options.ConnectParallelism }, async (i, ct) =>
        {
            var endpoint = options.Endpoints[i % options.Endpoints.Count];
            try
            {
                subscribers[i - first] = await target.SubscribeAsync(endpoint, [.. options.ChannelsOf(i)], metrics, ct);
            }
            catch (Exception ex) when (ex is not (OperationCanceledException or OutOfMemoryException))
            {
                throw new SubscribeFailedException($"subscriber {i} could not connect and subscribe at {endpoint}: {ex.Message}", ex);
            }
        });
        var seconds = clock.Elapsed.TotalSeconds;
        if (!options.Quiet)
        {
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"connected {count} in {seconds:F1}s"));
        }

        return ([.. subscribers], seconds);
    }

    private static async Task DisposeAllAsync(List<IAsyncDisposable> subscribers) =>
        await Parallel.ForEachAsync(subscribers, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (s, _) => await s.DisposeAsync());
}

/// <summary>A subscriber could not connect or subscribe: the run cannot measure what it was asked to.</summary>
internal sealed class SubscribeFailedException(string message, Exception inner) : Exception(message, inner);
