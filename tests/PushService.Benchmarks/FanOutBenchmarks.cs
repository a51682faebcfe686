using System.Diagnostics.Metrics;
using System.IO.Pipelines;
using System.Text;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using PushService.Broker;
using PushService.Broker.InMemory;
using PushService.Gateway.Configuration;
using PushService.Gateway.Connections;
using PushService.Gateway.Hub;
using PushService.Gateway.Telemetry;

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
        var options = Options.Create(new PushServiceOptions());
        var meters = new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>();
        var broker = new InMemoryBroker(Options.Create(new InMemoryBrokerOptions()), TimeProvider.System, NullLogger<InMemoryBroker>.Instance);
        _hub = new LocalHub(broker, new InMemoryPresenceStore(TimeProvider.System), options, new PushMetrics(meters), NullLogger<LocalHub>.Instance);

        // A send loop that flushes once and then sleeps: connections stay marked scheduled, as under load.
        _loop = new SendScheduler.SendLoop(TimeSpan.FromHours(1), TimeProvider.System);
        var settings = new ConnectionSettings(long.MaxValue, int.MaxValue, 65536);
        _connections = new ClientConnection[Subscribers];
        var position = new StreamPosition(0, "bench");
        for (var i = 0; i < Subscribers; i++)
        {
            var pipe = new Pipe();
            var transport = new DuplexPipe(pipe.Reader, pipe.Writer);
            var connection = new ClientConnection(transport, () => { }, $"c{i}", settings, _loop, TimeProvider.System, NullLogger.Instance) { Hub = _hub };
            var subscription = new Subscription(connection, "bench") { Namespace = options.Value.DefaultNamespace };
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

/// <summary>A pipe pair for connections whose sends the benchmark never drains.</summary>
internal sealed record DuplexPipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;
