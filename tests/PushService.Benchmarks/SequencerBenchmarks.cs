using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using PushService.Broker;
using PushService.Broker.Sequencing;

namespace PushService.Benchmarks;

/// <summary>
/// What the channel sequencer adds to each publication a node receives in order (its fast path), against handing the
/// same publication to the handler directly. Both make the publication, as the envelope decoder does.
/// </summary>
[MemoryDiagnoser]
public class SequencerBenchmarks
{
    private readonly CountingHandler _handler = new();
    private readonly ReadOnlyMemory<byte> _data = "{\"price\":101.25}"u8.ToArray();
    private ChannelSequencer _sequencer = null!;
    private long _offset;

    [GlobalSetup]
    public void Setup()
    {
        _sequencer = new ChannelSequencer("prices", (_, _, _, _) => throw new InvalidOperationException("no gap in order"), _handler,
            new SequencerSettings(), new SequencerProgress(), NullLogger.Instance);
        _sequencer.Start(new StreamPosition(0, "epoch123")).GetAwaiter().GetResult();
    }

    [Benchmark(Baseline = true)]
    public ValueTask HandlerDirectly() => _handler.HandlePublicationAsync(new Publication("prices", ++_offset, "epoch123", _data));

    [Benchmark]
    public ValueTask ThroughTheSequencer() => _sequencer.OfferAsync(new Publication("prices", ++_offset, "epoch123", _data));

    private sealed class CountingHandler : IBrokerEventHandler
    {
        public long Count;

        public ValueTask HandlePublicationAsync(Publication publication)
        {
            Count++;
            return ValueTask.CompletedTask;
        }

        public ValueTask HandleStreamResetAsync(string channel) => throw new InvalidOperationException("no reset in order");

        public ValueTask HandleJoinLeaveAsync(string channel, PresenceEntry entry, bool join) => ValueTask.CompletedTask;
    }
}
