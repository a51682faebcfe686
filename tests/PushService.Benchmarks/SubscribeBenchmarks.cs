using System.Diagnostics.Metrics;
using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using PushService.Broker.InMemory;
using PushService.Gateway.Configuration;
using PushService.Gateway.Connections;
using PushService.Gateway.Hub;
using PushService.Gateway.Telemetry;

namespace PushService.Benchmarks;

/// <summary>
/// One subscriber joining and leaving a channel that already has N local subscribers: the cost of a subscribe and an
/// unsubscribe in the hub, which must not grow with the channel's size.
/// </summary>
[MemoryDiagnoser]
public class SubscribeBenchmarks
{
    private LocalHub _hub = null!;
    private Subscription _joiner = null!;
    private SendScheduler.SendLoop _loop = null!;
    private PushServiceOptions _options = null!;

    [Params(1_000, 10_000)]
    public int Subscribers { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _options = new PushServiceOptions();
        var meters = new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>();
        var broker = new InMemoryBroker(Options.Create(new InMemoryBrokerOptions()), TimeProvider.System, NullLogger<InMemoryBroker>.Instance);
        _hub = new LocalHub(broker, new InMemoryPresenceStore(TimeProvider.System), Options.Create(_options), new PushMetrics(meters),
            NullLogger<LocalHub>.Instance);
        _loop = new SendScheduler.SendLoop(TimeSpan.Zero, TimeProvider.System);
        var settings = new ConnectionSettings(1 << 20, 1000, 65536);
        for (var i = 0; i <= Subscribers; i++)
        {
            var pipe = new Pipe();
            var connection = new ClientConnection(new DuplexPipe(pipe.Reader, pipe.Writer), () => { }, $"c{i}", settings, _loop,
                TimeProvider.System, NullLogger.Instance) { Hub = _hub };
            var subscription = new Subscription(connection, "bench") { Namespace = _options.DefaultNamespace };
            if (i == Subscribers)
            {
                _joiner = subscription;
            }
            else
            {
                _hub.AddAsync(subscription, CancellationToken.None).AsTask().GetAwaiter().GetResult();
            }
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _loop.DisposeAsync().AsTask().GetAwaiter().GetResult();

    [Benchmark]
    public async Task JoinAndLeave()
    {
        await _hub.AddAsync(_joiner, CancellationToken.None);
        await _hub.RemoveAsync(_joiner);
    }
}
