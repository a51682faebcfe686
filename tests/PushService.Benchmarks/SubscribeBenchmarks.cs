using BenchmarkDotNet.Attributes;
using PushService.Gateway.Configuration;
using PushService.Gateway.Connections;
using PushService.Gateway.Hub;

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
        _hub = BenchmarkHub.Create(_options);
        _loop = new SendScheduler.SendLoop(TimeSpan.Zero, TimeProvider.System);
        var settings = new ConnectionSettings(1 << 20, 1000, 65536);
        for (var i = 0; i <= Subscribers; i++)
        {
            var connection = BenchmarkHub.Connection(_hub, i, settings, _loop);
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
