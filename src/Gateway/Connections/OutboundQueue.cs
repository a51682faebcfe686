using System.Threading.Channels;

namespace PushService.Gateway.Connections;

/// <summary>
/// A connection's outbound frames, bounded in bytes and in count. Enqueueing never waits: a full queue means the
/// client is not keeping up, and the caller closes it (4500) rather than slow anyone else down.
/// Frames are shared, immutable arrays: the same bytes sit in every subscriber's queue.
/// </summary>
internal sealed class OutboundQueue
{
    private readonly Channel<ReadOnlyMemory<byte>> _channel = Channel.CreateUnbounded<ReadOnlyMemory<byte>>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = false, AllowSynchronousContinuations = false });

    private readonly long _maxBytes;
    private readonly int _maxMessages;
    private long _bytes;
    private int _count;

    public OutboundQueue(long maxBytes, int maxMessages)
    {
        _maxBytes = maxBytes;
        _maxMessages = maxMessages;
    }

    public ChannelReader<ReadOnlyMemory<byte>> Reader => _channel.Reader;

    /// <summary>Bytes queued and not yet taken by the writer.</summary>
    public long QueuedBytes => Volatile.Read(ref _bytes);

    /// <summary>Queues a frame. False when it would overflow the bounds or the queue is completed.</summary>
    public bool TryEnqueue(ReadOnlyMemory<byte> frame)
    {
        var bytes = Interlocked.Add(ref _bytes, frame.Length);
        var count = Interlocked.Increment(ref _count);
        if (bytes > _maxBytes || count > _maxMessages || !_channel.Writer.TryWrite(frame))
        {
            Interlocked.Add(ref _bytes, -frame.Length);
            Interlocked.Decrement(ref _count);
            return false;
        }

        return true;
    }

    /// <summary>Queues a control frame (a reply, a ping) that must not be dropped for size; false once completed.</summary>
    public bool TryEnqueueControl(ReadOnlyMemory<byte> frame)
    {
        Interlocked.Add(ref _bytes, frame.Length);
        Interlocked.Increment(ref _count);
        if (!_channel.Writer.TryWrite(frame))
        {
            Interlocked.Add(ref _bytes, -frame.Length);
            Interlocked.Decrement(ref _count);
            return false;
        }

        return true;
    }

    /// <summary>Called by the writer for each frame it takes.</summary>
    public void Taken(int length)
    {
        Interlocked.Add(ref _bytes, -length);
        Interlocked.Decrement(ref _count);
    }

    /// <summary>No more frames; the writer finishes what is queued (or drops it, if told so) and closes.</summary>
    public void Complete() => _channel.Writer.TryComplete();
}
