using System.Buffers;

namespace PushService.Gateway.Transport.Sockets;

/// <summary>
/// A buffer of the lean transport, linked into a sequence of bytes read and not yet consumed, or written and not yet
/// sent. Rented only while it holds bytes (<see cref="Rent"/>) and given back as soon as they are consumed or sent
/// (<see cref="Release"/>): an idle connection holds none.
/// </summary>
internal sealed class PooledSegment : ReadOnlySequenceSegment<byte>
{
    /// <summary>The usual size; larger ones are rented for larger requests and not cached.</summary>
    public const int StandardSize = 4096;

    /// <summary>
    /// A few released segments per thread, with their arrays, so that a receive or a flush reuses one instead of
    /// allocating a segment object each time. Per thread, not per connection: a connection at rest keeps nothing.
    /// </summary>
    [ThreadStatic]
    private static PooledSegment?[]? t_cache;

    [ThreadStatic]
    private static int t_cached;

    private PooledSegment(byte[] array) => Array = array;

    public byte[] Array { get; }

    /// <summary>How many bytes of <see cref="Array"/> hold data.</summary>
    public int End { get; private set; }

    public int Free => Array.Length - End;

    public PooledSegment? NextSegment => (PooledSegment?)Next;

    /// <summary>An empty segment of at least <paramref name="minimumSize"/> bytes that starts at <paramref name="runningIndex"/> of its sequence.</summary>
    public static PooledSegment Rent(int minimumSize, long runningIndex)
    {
        PooledSegment segment;
        if (minimumSize <= StandardSize && t_cached > 0)
        {
            var cache = t_cache!;
            segment = cache[--t_cached]!;
            cache[t_cached] = null;
        }
        else
        {
            segment = new PooledSegment(ArrayPool<byte>.Shared.Rent(Math.Max(minimumSize, StandardSize)));
        }

        segment.RunningIndex = runningIndex;
        return segment;
    }

    /// <summary>Gives the segment back; nothing may use it afterwards.</summary>
    public static void Release(PooledSegment segment)
    {
        segment.End = 0;
        segment.Memory = default;
        segment.Next = null;
        if (segment.Array.Length == StandardSize)
        {
            var cache = t_cache ??= new PooledSegment?[8];
            if (t_cached < cache.Length)
            {
                cache[t_cached++] = segment;
                return;
            }
        }

        ArrayPool<byte>.Shared.Return(segment.Array);
    }

    /// <summary>Gives back this segment and every one linked after it.</summary>
    public static void ReleaseAll(PooledSegment? segment)
    {
        while (segment is not null)
        {
            var next = segment.NextSegment;
            Release(segment);
            segment = next;
        }
    }

    /// <summary>
    /// Gives back the segments at the head of a sequence whose bytes are all consumed (read, or sent); the sequence is
    /// empty (<paramref name="tail"/> null too) when none is left.
    /// </summary>
    public static void ReleaseConsumed(ref PooledSegment? head, ref int headStart, ref PooledSegment? tail)
    {
        while (head is not null && headStart == head.End)
        {
            var next = head.NextSegment;
            Release(head);
            head = next;
            headStart = 0;
        }

        if (head is null)
        {
            tail = null;
        }
    }

    /// <summary>Counts <paramref name="count"/> more bytes of <see cref="Array"/> as data.</summary>
    public void Grow(int count)
    {
        End += count;
        Memory = Array.AsMemory(0, End);
    }

    /// <summary>Drops the link to the segment after this one (which was appended and then not used).</summary>
    public void Unlink() => Next = null;

    /// <summary>Appends a fresh segment after this one and returns it.</summary>
    public PooledSegment Append(int minimumSize)
    {
        var next = Rent(minimumSize, RunningIndex + End);
        Next = next;
        return next;
    }
}
