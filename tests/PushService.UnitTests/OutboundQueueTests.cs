using PushService.Gateway.Connections;

namespace PushService.UnitTests;

public sealed class OutboundQueueTests
{
    private static ReadOnlyMemory<byte> Frame(int length, byte value = 1) => Enumerable.Repeat(value, length).ToArray();

    [Fact]
    public void Bounds_InBytesAndCount_RejectFrames_ButControlFramesAlwaysFit()
    {
        var byBytes = new OutboundQueue(maxBytes: 100, maxMessages: 1000);
        Assert.True(byBytes.TryEnqueue(Frame(60)));
        Assert.False(byBytes.TryEnqueue(Frame(41)));
        Assert.True(byBytes.TryEnqueue(Frame(40)));
        Assert.True(byBytes.TryEnqueueControl(Frame(50)));

        var byCount = new OutboundQueue(maxBytes: 1_000_000, maxMessages: 2);
        Assert.True(byCount.TryEnqueue(Frame(1)));
        Assert.True(byCount.TryEnqueue(Frame(1)));
        Assert.False(byCount.TryEnqueue(Frame(1)));
        Assert.True(byCount.TryDequeue(out _));
        Assert.True(byCount.TryEnqueue(Frame(1)));
    }

    [Fact]
    public void TheWriteThatEmptiesTheQueue_ReportsTheOldestStampedPublicationSinceItWasLastEmpty()
    {
        var queue = new OutboundQueue(1_000_000, 1000);
        var batch = new ReadOnlyMemory<byte>[2];
        Assert.True(queue.TryEnqueueControl(Frame(5)));
        Assert.True(queue.TryEnqueue(Frame(5), acceptedAtTicks: 0));
        Assert.True(queue.TryEnqueue(Frame(5), acceptedAtTicks: 1_000));
        Assert.True(queue.TryEnqueue(Frame(5), acceptedAtTicks: 900));

        // Not yet empty: no sample. Then the batch that empties it reports the first stamp queued, not the smallest.
        Assert.Equal(2, queue.DequeueBatch(batch, 1_000, out _, out var first));
        Assert.Equal(0, first);
        Assert.Equal(2, queue.DequeueBatch(batch, 1_000, out _, out var last));
        Assert.Equal(1_000, last);

        // The next round starts afresh; frames without a stamp (replies, control pushes) never make a sample.
        Assert.True(queue.TryEnqueueControl(Frame(5)));
        Assert.Equal(1, queue.DequeueBatch(batch, 1_000, out _, out var none));
        Assert.Equal(0, none);
        Assert.True(queue.TryEnqueue(Frame(5), acceptedAtTicks: 2_000));
        queue.Clear();
        Assert.True(queue.TryEnqueue(Frame(5), acceptedAtTicks: 3_000));
        Assert.Equal(1, queue.DequeueBatch(batch, 1_000, out _, out var afterClear));
        Assert.Equal(3_000, afterClear);
    }

    [Fact]
    public void Batches_KeepOrder_FitTheLimitWithSeparators_AndTakeAnOversizedFrameAlone()
    {
        var queue = new OutboundQueue(1_000_000, 1000);
        for (byte i = 1; i <= 40; i++)
        {
            Assert.True(queue.TryEnqueue(Frame(10, i)));
        }

        Assert.True(queue.TryEnqueue(Frame(500, 41)));
        var batch = new ReadOnlyMemory<byte>[16];

        // 10 + 10 frames of 11 bytes (one separator each) = 109 fits 110; an eleventh would not.
        Assert.Equal(10, queue.DequeueBatch(batch, 110, out var bytes));
        Assert.Equal(109, bytes);
        Assert.Equal(Enumerable.Range(1, 10), batch[..10].Select(f => (int)f.Span[0]));

        // The batch array bounds it too.
        Assert.Equal(16, queue.DequeueBatch(batch, 10_000, out _));
        Assert.Equal(11, batch[0].Span[0]);
        Assert.Equal(14, queue.DequeueBatch(batch, 153, out bytes));
        Assert.Equal(153, bytes);
        Assert.Equal(1, queue.DequeueBatch(batch, 150, out bytes));
        Assert.Equal(500, bytes);
        Assert.True(queue.IsEmpty);
        Assert.Equal(0, queue.DequeueBatch(batch, 150, out _));
    }

    [Fact]
    public void Completed_RefusesEverything_ClearEmpties()
    {
        var queue = new OutboundQueue(1000, 10);
        Assert.True(queue.TryEnqueue(Frame(5)));
        queue.Complete();
        Assert.False(queue.TryEnqueue(Frame(5)));
        Assert.False(queue.TryEnqueueControl(Frame(5)));
        Assert.True(queue.TryPeek(out _));
        queue.Clear();
        Assert.True(queue.IsEmpty);
        Assert.False(queue.TryDequeue(out _));
    }

    [Fact]
    public async Task ConcurrentProducers_LoseNothing_AndKeepEachProducersOrder()
    {
        var queue = new OutboundQueue(long.MaxValue, int.MaxValue);
        const int perProducer = 20_000;
        var producers = Enumerable.Range(0, 4).Select(p => Task.Run(() =>
        {
            for (var i = 0; i < perProducer; i++)
            {
                Assert.True(queue.TryEnqueue(BitConverter.GetBytes((p << 24) | i)));
            }
        })).ToArray();

        var next = new int[4];
        var batch = new ReadOnlyMemory<byte>[64];
        var taken = 0;
        while (taken < 4 * perProducer)
        {
            var count = queue.DequeueBatch(batch, 1 << 20, out _);
            for (var i = 0; i < count; i++)
            {
                var value = BitConverter.ToInt32(batch[i].Span);
                Assert.Equal(next[value >> 24]++, value & 0xFFFFFF);
            }

            taken += count;
            if (count == 0 && producers.All(t => t.IsCompleted) && queue.IsEmpty)
            {
                break;
            }
        }

        await Task.WhenAll(producers);
        Assert.Equal(4 * perProducer, taken);
    }
}
