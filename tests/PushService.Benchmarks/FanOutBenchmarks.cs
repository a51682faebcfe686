using System.Text;
using BenchmarkDotNet.Attributes;
using PushService.Broker;
using PushService.Gateway.Configuration;
using PushService.Gateway.Connections;
using PushService.Gateway.Hub;

namespace PushService.Benchmarks;

/// <summary>
/// The local fan-out of one publication to N subscribers on one channel: encode once, queue the same bytes to every
/// subscriber. Each operation also drains the queues (as the send loops would, minus the socket), so the queues stay
/// small. Allocated bytes per operation divided by N is the allocation per subscriber: the target is zero.
/// </summary>
[MemoryDiagnoser]
public class FanOutBenchmarks
{
    private LocalHub _hub = null!;
    private ClientConnection[] _connections = null!;
    private Publication[] _publications = null!;
    private SendScheduler.SendLoop _loop = null!;
    private int _next;

    [Params(10_000)]
    public int Subscribers { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var options = new PushServiceOptions();
        _hub = BenchmarkHub.Create(options);

        // A send loop that flushes once and then sleeps: connections stay marked scheduled, as under load.
        _loop = new SendScheduler.SendLoop(TimeSpan.FromHours(1), TimeProvider.System);
        var settings = new ConnectionSettings(long.MaxValue, int.MaxValue, 65536);
        _connections = new ClientConnection[Subscribers];
        var position = new StreamPosition(0, "bench");
        for (var i = 0; i < Subscribers; i++)
        {
            var connection = BenchmarkHub.Connection(_hub, i, settings, _loop);
            var subscription = new Subscription(connection, "bench") { Namespace = options.DefaultNamespace };
            _hub.AddAsync(subscription, CancellationToken.None).AsTask().GetAwaiter().GetResult();
            subscription.Activate(position, "{}"u8.ToArray());
            _connections[i] = connection;
        }

        Thread.Sleep(500);
        var data = Encoding.UTF8.GetBytes("{\"headline\":\"hello\",\"n\":42}");
        _publications = [.. Enumerable.Range(1, 1_000_000).Select(i => new Publication("bench", i, "bench", data))];
    }

    [Benchmark]
    public void FanOutOnePublication()
    {
        // Offsets must grow, or subscribers drop the publication as already seen.
        var delivered = _hub.HandlePublicationAsync(_publications[_next++ % _publications.Length]);
        if (!delivered.IsCompletedSuccessfully)
        {
            throw new InvalidOperationException("Local fan-out never waits.");
        }

        foreach (var connection in _connections)
        {
            connection.Queue.Clear();
        }
    }
}
