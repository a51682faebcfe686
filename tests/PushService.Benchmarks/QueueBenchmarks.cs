using BenchmarkDotNet.Attributes;
using PushService.Gateway.Connections;

namespace PushService.Benchmarks;

/// <summary>The bounded outbound queue: what each delivery pays before the send loop takes over.</summary>
[MemoryDiagnoser]
public class QueueBenchmarks
{
    private readonly OutboundQueue _queue = new(1024 * 1024, 10_000);
    private readonly ReadOnlyMemory<byte> _frame = new byte[120];
    private readonly ReadOnlyMemory<byte>[] _batch = new ReadOnlyMemory<byte>[16];

    [Benchmark]
    public bool EnqueueThenDequeue()
    {
        _queue.TryEnqueue(_frame);
        return _queue.TryDequeue(out _);
    }

    [Benchmark(OperationsPerInvoke = 10)]
    public void EnqueueTenThenDrain()
    {
        for (var i = 0; i < 10; i++)
        {
            _queue.TryEnqueue(_frame);
        }

        _queue.Clear();
    }

    /// <summary>What a send loop pass does for a busy connection: take ten queued pushes as one batch.</summary>
    [Benchmark(OperationsPerInvoke = 10)]
    public int EnqueueTenThenTakeBatch()
    {
        for (var i = 0; i < 10; i++)
        {
            _queue.TryEnqueue(_frame);
        }

        return _queue.DequeueBatch(_batch, 64 * 1024, out _);
    }
}
