namespace PushService.Gateway.Connections;

/// <summary>
/// A connection's outbound frames, bounded in bytes and in count. Enqueueing never waits: a full queue means the
/// client is not keeping up, and the caller closes it (4500) rather than slow anyone else down.
/// Frames are shared, immutable arrays: the same bytes sit in every subscriber's queue.
/// </summary>
/// <remarks>
/// A ring under a lock rather than a <c>ConcurrentQueue</c>: the lock is uncontended almost always (the fan-out adds,
/// the connection's send loop takes), the ring starts empty and grows only as far as the connection's backlog does, so
/// an idle connection holds no slots at all, and the send loop can take a whole batch in one go.
/// </remarks>
internal sealed class OutboundQueue
{
    private const int InitialSlots = 4;

    private readonly Lock _lock = new();
    private readonly long _maxBytes;
    private readonly int _maxMessages;
    private ReadOnlyMemory<byte>[]? _slots;
    private int _head;
    private int _count;
    private long _bytes;
    private bool _completed;
    // The accepted time of the oldest stamped publication queued since the queue was last emptied (0: none).
    private long _oldestAcceptedAt;

    public OutboundQueue(long maxBytes, int maxMessages)
    {
        _maxBytes = maxBytes;
        _maxMessages = maxMessages;
    }

    public bool IsEmpty => Volatile.Read(ref _count) == 0;

    /// <summary>Frames queued now, for metrics.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Bytes queued now, for metrics.</summary>
    public long Bytes => Volatile.Read(ref _bytes);

    /// <summary>
    /// Queues a frame, of a publication accepted at <paramref name="acceptedAtTicks"/> (0: not stamped). False when it
    /// would overflow the bounds or the queue is completed.
    /// </summary>
    public bool TryEnqueue(ReadOnlyMemory<byte> frame, long acceptedAtTicks = 0)
    {
        lock (_lock)
        {
            if (_completed || _bytes + frame.Length > _maxBytes || _count + 1 > _maxMessages)
            {
                return false;
            }

            if (_oldestAcceptedAt == 0)
            {
                _oldestAcceptedAt = acceptedAtTicks;
            }

            Add(frame);
            return true;
        }
    }

    /// <summary>Queues a reply or control push, which counts toward the bound but never trips it; false once completed.</summary>
    public bool TryEnqueueControl(ReadOnlyMemory<byte> frame)
    {
        lock (_lock)
        {
            if (_completed)
            {
                return false;
            }

            Add(frame);
            return true;
        }
    }

    public bool TryPeek(out ReadOnlyMemory<byte> frame)
    {
        lock (_lock)
        {
            frame = _count > 0 ? _slots![_head] : default;
            return _count > 0;
        }
    }

    /// <summary>Takes the next frame for sending.</summary>
    public bool TryDequeue(out ReadOnlyMemory<byte> frame)
    {
        lock (_lock)
        {
            if (_count == 0)
            {
                frame = default;
                return false;
            }

            frame = Take();
            return true;
        }
    }

    /// <summary>Takes the frames that fit one batch, as the other overload, for callers that keep no latency.</summary>
    public int DequeueBatch(Span<ReadOnlyMemory<byte>> batch, int maxBytes, out int batchBytes) => DequeueBatch(batch, maxBytes, out batchBytes, out _);

    /// <summary>
    /// Takes the frames that fit one batch: at least one, then more while the total, with a one-byte separator between
    /// frames, stays within <paramref name="maxBytes"/>. Returns how many were taken into <paramref name="batch"/>. When
    /// the batch empties the queue, <paramref name="oldestAcceptedAt"/> is the accepted time of the oldest stamped
    /// publication taken since it was last empty (else 0): one fan-out latency sample per write, not per frame.
    /// </summary>
    public int DequeueBatch(Span<ReadOnlyMemory<byte>> batch, int maxBytes, out int batchBytes, out long oldestAcceptedAt)
    {
        batchBytes = 0;
        oldestAcceptedAt = 0;
        var taken = 0;
        lock (_lock)
        {
            while (_count > 0 && taken < batch.Length)
            {
                var next = _slots![_head];
                var needed = next.Length + (taken > 0 ? 1 : 0);
                if (taken > 0 && batchBytes + needed > maxBytes)
                {
                    break;
                }

                batch[taken++] = Take();
                batchBytes += needed;
            }

            if (_count == 0)
            {
                oldestAcceptedAt = _oldestAcceptedAt;
                _oldestAcceptedAt = 0;
            }
        }

        return taken;
    }

    /// <summary>No more frames are accepted; what is queued may still be sent (or dropped).</summary>
    public void Complete()
    {
        lock (_lock)
        {
            _completed = true;
        }
    }

    /// <summary>Drops everything queued (a ring a burst grew is given back).</summary>
    public void Clear()
    {
        lock (_lock)
        {
            if (_slots is not null && _slots.Length > InitialSlots * 4)
            {
                _slots = null;
            }
            else
            {
                _slots?.AsSpan().Clear();
            }

            _head = 0;
            _bytes = 0;
            _oldestAcceptedAt = 0;
            Volatile.Write(ref _count, 0);
        }
    }

    private void Add(ReadOnlyMemory<byte> frame)
    {
        if (_slots is null)
        {
            _slots = new ReadOnlyMemory<byte>[InitialSlots];
        }
        else if (_count == _slots.Length)
        {
            var larger = new ReadOnlyMemory<byte>[_slots.Length * 2];
            for (var i = 0; i < _count; i++)
            {
                larger[i] = _slots[(_head + i) % _slots.Length];
            }

            _slots = larger;
            _head = 0;
        }

        _slots[(_head + _count) % _slots.Length] = frame;
        _bytes += frame.Length;
        Volatile.Write(ref _count, _count + 1);
    }

    private ReadOnlyMemory<byte> Take()
    {
        var frame = _slots![_head];
        _slots[_head] = default;
        _head = (_head + 1) % _slots.Length;
        _bytes -= frame.Length;
        Volatile.Write(ref _count, _count - 1);
        if (_count == 0)
        {
            _head = 0;
            if (_slots.Length > InitialSlots * 4)
            {
                // A burst grew the ring; an idle connection should not keep it.
                _slots = null;
            }
        }

        return frame;
    }
}
