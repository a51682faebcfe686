namespace PushService.Broker.Sequencing;

/// <summary>
/// What the sequencers of one node share: how many channels are behind (the node is not ready until none is), the
/// history reads allowed at once, and counts for telemetry.
/// </summary>
internal sealed class SequencerProgress
{
    private int _behind;
    private long _filled;
    private long _resets;
    private long _retries;

    public SequencerProgress(int concurrentReads = 16) => ReadSlots = new SemaphoreSlim(concurrentReads, concurrentReads);

    /// <summary>Channels waiting for a gap fill or a catch-up.</summary>
    public int Behind => Volatile.Read(ref _behind);

    /// <summary>Publications delivered from history because pub/sub did not bring them.</summary>
    public long Filled => Interlocked.Read(ref _filled);

    /// <summary>Times a channel's continuity was lost, as history said.</summary>
    public long Resets => Interlocked.Read(ref _resets);

    /// <summary>History reads that failed and were tried again.</summary>
    public long Retries => Interlocked.Read(ref _retries);

    public SemaphoreSlim ReadSlots { get; }

    public void ChangeBehind(int delta) => Interlocked.Add(ref _behind, delta);

    public void CountFilled(int count) => Interlocked.Add(ref _filled, count);

    public void CountReset() => Interlocked.Increment(ref _resets);

    public void CountRetry() => Interlocked.Increment(ref _retries);
}
