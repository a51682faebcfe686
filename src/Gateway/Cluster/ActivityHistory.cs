using PushService.Broker.Control;
using PushService.Gateway.Telemetry;

namespace PushService.Gateway.Cluster;

/// <summary>
/// This node's activity over the last <see cref="WindowSeconds"/> seconds, second by second, made from the running totals
/// (<see cref="ActivityCounters"/>) each time they are read: at every heartbeat and whenever the console asks.
/// </summary>
/// <remarks>
/// Buckets are whole Unix seconds, so every node's buckets line up and the console can add them across the cluster. What
/// happened between two readings is spread over the seconds between them in proportion to their overlap: with readings
/// at each heartbeat (2 s) the chart is as fine as the heartbeat, with no timer of its own. Disconnects are counted in
/// the second of the reading that saw them.
/// </remarks>
public sealed class ActivityHistory
{
    /// <summary>Seconds kept: the console's chart spans five minutes.</summary>
    public const int WindowSeconds = 300;

    /// <summary>The window's whole seconds and the one in progress.</summary>
    private const int Slots = WindowSeconds + 1;

    private readonly Lock _lock = new();
    private readonly double[] _publications = new double[Slots];
    private readonly double[] _deliveries = new double[Slots];
    private readonly Dictionary<int, long>?[] _disconnects = new Dictionary<int, long>?[Slots];
    private ActivityTotals _last = ActivityTotals.Zero;
    private double _lastTime = double.NaN;
    private long _newest = long.MinValue;

    /// <summary>Takes in the totals read at <paramref name="now"/>.</summary>
    public void Record(DateTimeOffset now, ActivityTotals totals)
    {
        var time = now.ToUnixTimeMilliseconds() / 1000.0;
        lock (_lock)
        {
            var second = (long)Math.Floor(time);
            Advance(second);
            if (double.IsNaN(_lastTime))
            {
                // The first reading only sets where counting starts: what came before it has no time to be spread over.
                _last = totals;
                _lastTime = time;
                return;
            }

            if (time <= _lastTime)
            {
                // The same instant (or a clock step back): the difference waits for the next reading rather than being lost.
                return;
            }

            Spread(_publications, _lastTime, time, totals.Publications - _last.Publications);
            Spread(_deliveries, _lastTime, time, totals.Deliveries - _last.Deliveries);
            foreach (var (code, count) in totals.Closes)
            {
                var closed = count - _last.Closes.GetValueOrDefault(code);
                if (closed > 0)
                {
                    var bucket = _disconnects[Index(second)] ??= [];
                    bucket[code] = bucket.GetValueOrDefault(code) + closed;
                }
            }

            _last = totals;
            _lastTime = time;
        }
    }

    /// <summary>
    /// The window up to the last whole second before <paramref name="now"/>, after taking in <paramref name="totals"/>
    /// read then.
    /// </summary>
    public NodeActivity Report(DateTimeOffset now, ActivityTotals totals)
    {
        Record(now, totals);
        lock (_lock)
        {
            var end = (long)Math.Floor(now.ToUnixTimeMilliseconds() / 1000.0) - 1;
            var publications = new int[WindowSeconds];
            var deliveries = new int[WindowSeconds];
            var disconnects = new Dictionary<int, long>();
            for (var i = 0; i < WindowSeconds; i++)
            {
                var second = end - WindowSeconds + 1 + i;
                if (second > _newest || second <= _newest - Slots)
                {
                    continue;
                }

                var index = Index(second);
                publications[i] = (int)Math.Round(_publications[index]);
                deliveries[i] = (int)Math.Round(_deliveries[index]);
                foreach (var (code, count) in _disconnects[index] ?? [])
                {
                    disconnects[code] = disconnects.GetValueOrDefault(code) + count;
                }
            }

            // The second in progress is left out of the series, but a disconnect counted in it is already known.
            foreach (var (code, count) in end + 1 == _newest ? _disconnects[Index(_newest)] ?? [] : [])
            {
                disconnects[code] = disconnects.GetValueOrDefault(code) + count;
            }

            return new NodeActivity(end, publications, deliveries, disconnects);
        }
    }

    /// <summary>Moves the newest second to <paramref name="second"/>, clearing the buckets it enters.</summary>
    private void Advance(long second)
    {
        if (second <= _newest)
        {
            return;
        }

        var from = _newest == long.MinValue ? second : Math.Max(_newest + 1, second - Slots + 1);
        for (var s = from; s <= second; s++)
        {
            var index = Index(s);
            _publications[index] = 0;
            _deliveries[index] = 0;
            _disconnects[index] = null;
        }

        _newest = second;
    }

    /// <summary>Adds <paramref name="count"/>, which happened between two times, to the seconds in between by overlap.</summary>
    private void Spread(double[] buckets, double from, double to, long count)
    {
        if (count <= 0)
        {
            return;
        }

        // Only what falls inside the window is kept; the part of a long gap before it was never shown anyway.
        var start = Math.Max(from, _newest - Slots + 1);
        var span = to - from;
        for (var second = (long)Math.Floor(start); second < to; second++)
        {
            var overlap = Math.Min(second + 1, to) - Math.Max(second, from);
            if (overlap > 0)
            {
                buckets[Index(second)] += count * overlap / span;
            }
        }
    }

    private static int Index(long second) => (int)(((second % Slots) + Slots) % Slots);
}
