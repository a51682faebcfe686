using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace PushService.Gateway.Telemetry;

/// <summary>
/// Running totals of what the node did since it started, readable by the node itself: the meter's instruments can only
/// be read by a listener, and the web console's rates and chart (<see cref="Cluster.ActivityHistory"/>) come from these.
/// </summary>
/// <remarks>
/// Counted at the same points as <see cref="PushMetrics"/>: once per publication, once per fan-out (with its subscriber
/// count, never per subscriber) and once per closed connection, so the hot path pays one interlocked add more per fan-out.
/// </remarks>
public sealed class ActivityCounters
{
    private readonly ConcurrentDictionary<int, StrongBox<long>> _closes = new();
    private long _publications;
    private long _deliveries;

    /// <summary>A publication was accepted by this node.</summary>
    public void Published() => Interlocked.Increment(ref _publications);

    /// <summary>A publication was queued to <paramref name="subscribers"/> local subscribers.</summary>
    public void Delivered(int subscribers) => Interlocked.Add(ref _deliveries, subscribers);

    /// <summary>A connection ended with close code <paramref name="code"/>.</summary>
    public void Closed(int code) => Interlocked.Increment(ref _closes.GetOrAdd(code, static _ => new StrongBox<long>()).Value);

    /// <summary>The totals now.</summary>
    public ActivityTotals Read()
    {
        var closes = new Dictionary<int, long>(_closes.Count);
        foreach (var (code, count) in _closes)
        {
            closes[code] = Interlocked.Read(ref count.Value);
        }

        return new ActivityTotals(Interlocked.Read(ref _publications), Interlocked.Read(ref _deliveries), closes);
    }
}

/// <summary>Totals since the node started.</summary>
/// <param name="Publications">Publications accepted.</param>
/// <param name="Deliveries">Pushes queued to local subscribers.</param>
/// <param name="Closes">Connections ended, by close code.</param>
public sealed record ActivityTotals(long Publications, long Deliveries, IReadOnlyDictionary<int, long> Closes)
{
    /// <summary>Nothing yet.</summary>
    public static ActivityTotals Zero { get; } = new(0, 0, new Dictionary<int, long>());
}
