using System.Collections.Concurrent;

namespace PushService.Gateway.Connections;

/// <summary>
/// A connection's outbound frames, bounded in bytes and in count. Enqueueing never waits: a full queue means the
/// client is not keeping up, and the caller closes it (4500) rather than slow anyone else down.
/// Frames are shared, immutable arrays: the same bytes sit in every subscriber's queue.
/// </summary>
internal sealed class OutboundQueue
{
    private readonly ConcurrentQueue<ReadOnlyMemory<byte>> _frames = new();
    private readonly long _maxBytes;
    private readonly int _maxMessages;
    private long _bytes;
    private int _count;
    private volatile bool _completed;

    public OutboundQueue(long maxBytes, int maxMessages)
    {
        _maxBytes = maxBytes;
        _maxMessages = maxMessages;
    }

    public bool IsEmpty => _frames.IsEmpty;

    /// <summary>Queues a frame. False when it would overflow the bounds or the queue is completed.</summary>
    public bool TryEnqueue(ReadOnlyMemory<byte> frame)
    {
        if (_completed)
        {
            return false;
        }

        var bytes = Interlocked.Add(ref _bytes, frame.Length);
        var count = Interlocked.Increment(ref _count);
        if (bytes > _maxBytes || count > _maxMessages)
        {
            Interlocked.Add(ref _bytes, -frame.Length);
            Interlocked.Decrement(ref _count);
            return false;
        }

        _frames.Enqueue(frame);
        return true;
    }

    /// <summary>Queues a reply or control push, which counts toward the bound but never trips it; false once completed.</summary>
    public bool TryEnqueueControl(ReadOnlyMemory<byte> frame)
    {
        if (_completed)
        {
            return false;
        }

        Interlocked.Add(ref _bytes, frame.Length);
        Interlocked.Increment(ref _count);
        _frames.Enqueue(frame);
        return true;
    }

    public bool TryPeek(out ReadOnlyMemory<byte> frame) => _frames.TryPeek(out frame);

    /// <summary>Takes the next frame for sending.</summary>
    public bool TryDequeue(out ReadOnlyMemory<byte> frame)
    {
        if (!_frames.TryDequeue(out frame))
        {
            return false;
        }

        Interlocked.Add(ref _bytes, -frame.Length);
        Interlocked.Decrement(ref _count);
        return true;
    }

    /// <summary>No more frames are accepted; what is queued may still be sent (or dropped).</summary>
    public void Complete() => _completed = true;

    /// <summary>Drops everything queued.</summary>
    public void Clear()
    {
        while (TryDequeue(out _))
        {
        }
    }
}
