using System.Diagnostics.Metrics;
using System.IO.Pipelines;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using PushService.Broker.InMemory;
using PushService.Gateway.Configuration;
using PushService.Gateway.Connections;
using PushService.Gateway.Hub;
using PushService.Gateway.Telemetry;

namespace PushService.Benchmarks;

/// <summary>A hub on the in-memory broker and connections over pipes nobody reads: the hub's work without sockets.</summary>
internal static class BenchmarkHub
{
    public static LocalHub Create(PushServiceOptions options)
    {
        var meters = new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>();
        var broker = new InMemoryBroker(Options.Create(new InMemoryBrokerOptions()), TimeProvider.System, NullLogger<InMemoryBroker>.Instance);
        return new LocalHub(broker, new InMemoryPresenceStore(TimeProvider.System), Options.Create(options), new PushMetrics(meters),
            TimeProvider.System, new NodeIdentity(Options.Create(options), TimeProvider.System), NullLogger<LocalHub>.Instance);
    }

    public static ClientConnection Connection(LocalHub hub, int index, ConnectionSettings settings, SendScheduler.SendLoop loop)
    {
        var pipe = new Pipe();
        return new ClientConnection(new DuplexPipe(pipe.Reader, pipe.Writer), static _ => { }, pipe, $"c{index}", settings, loop,
            static (_, _) => ValueTask.CompletedTask, TimeProvider.System, NullLogger.Instance);
    }
}

/// <summary>A pipe pair for connections whose sends the benchmark never drains.</summary>
internal sealed record DuplexPipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;
