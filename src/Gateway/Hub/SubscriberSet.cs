namespace PushService.Gateway.Hub;

/// <summary>
/// The local subscribers of one channel: fan-out reads it without a lock while the channel's gate serialises changes.
/// Adding and removing are O(1) (a copy-on-write array would copy the whole channel on every subscribe: quadratic in a
/// channel's size).
/// </summary>
/// <remarks>
/// A fan-out must never skip a subscriber that stays. So a leaver's slot is cleared (and later reused), never filled by
/// moving another subscriber into it, and an array is never rearranged while readers may hold it: packing after most
/// subscribers left copies the rest into a new array, in order. A subscriber's index therefore only ever goes down, and a
/// reader that takes the used mark first and the array second covers every subscriber present when it started.
/// </remarks>
internal sealed class SubscriberSet
{
    private const int InitialCapacity = 4;

    private Subscription?[] _slots = [];
    // Slots below this mark may hold a subscriber. Written after _slots when both change, read before it, so a reader
    // that sees a mark sees an array at least as new as the one the mark was set for.
    private int _used;
    private int _count;
    private Stack<int>? _free;

    /// <summary>Subscribers in the set.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Adds a subscriber; the caller holds the channel's gate.</summary>
    public void Add(Subscription subscription)
    {
        if (_free is { Count: > 0 } free)
        {
            var slot = free.Pop();
            subscription.Slot = slot;
            Volatile.Write(ref _slots[slot], subscription);
        }
        else
        {
            if (_used == _slots.Length)
            {
                var grown = new Subscription?[Math.Max(InitialCapacity, _slots.Length * 2)];
                Array.Copy(_slots, grown, _used);
                Volatile.Write(ref _slots, grown);
            }

            subscription.Slot = _used;
            _slots[_used] = subscription;
            Volatile.Write(ref _used, _used + 1);
        }

        Volatile.Write(ref _count, _count + 1);
    }

    /// <summary>Removes a subscriber; false when it is not in the set. The caller holds the channel's gate.</summary>
    public bool Remove(Subscription subscription)
    {
        var slot = subscription.Slot;
        var slots = _slots;
        if ((uint)slot >= (uint)_used || !ReferenceEquals(slots[slot], subscription))
        {
            return false;
        }

        Volatile.Write(ref slots[slot], null);
        subscription.Slot = -1;
        Volatile.Write(ref _count, _count - 1);
        if (_count == 0)
        {
            Reset();
        }
        else if (_count * 4 < _used && _used > 64)
        {
            Compact();
        }
        else
        {
            (_free ??= new Stack<int>()).Push(slot);
        }

        return true;
    }

    /// <summary>Walks the subscribers as of now, for one fan-out, without allocating.</summary>
    public Enumerator GetEnumerator()
    {
        var used = Volatile.Read(ref _used);
        var slots = Volatile.Read(ref _slots);
        return new Enumerator(slots, Math.Min(used, slots.Length));
    }

    private void Reset()
    {
        // Readers holding the old array still see a consistent (stale) view; new ones start from nothing.
        Volatile.Write(ref _used, 0);
        Volatile.Write(ref _slots, []);
        _free = null;
    }

    private void Compact()
    {
        // After most subscribers left, pack the rest into a smaller array so fan-out stops walking empty slots.
        // The new array is published before the lower mark: a reader that sees the mark sees the packed array.
        var packed = new Subscription?[Math.Max(InitialCapacity, _count * 2)];
        var next = 0;
        for (var i = 0; i < _used; i++)
        {
            if (_slots[i] is { } subscription)
            {
                subscription.Slot = next;
                packed[next++] = subscription;
            }
        }

        Volatile.Write(ref _slots, packed);
        Volatile.Write(ref _used, next);
        _free = null;
    }

    /// <summary>Walks one array's slots up to a mark, skipping empty ones.</summary>
    public struct Enumerator(Subscription?[] slots, int length)
    {
        private int _index = -1;
        private Subscription? _current;

        public readonly Subscription Current => _current!;

        public bool MoveNext()
        {
            while (++_index < length)
            {
                _current = Volatile.Read(ref slots[_index]);
                if (_current is not null)
                {
                    return true;
                }
            }

            return false;
        }
    }
}
