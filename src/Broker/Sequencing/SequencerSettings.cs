namespace PushService.Broker.Sequencing;

/// <summary>How a <see cref="ChannelSequencer"/> reads history and waits for it.</summary>
internal sealed record SequencerSettings
{
    /// <summary>Publications read per history call while filling a gap.</summary>
    public int PageSize { get; init; } = 1000;

    /// <summary>Publications held per channel while a fill waits for history; past it they are read back from history.</summary>
    public int MaxHeld { get; init; } = 10_000;

    /// <summary>The first wait before reading history again after a failed read.</summary>
    public TimeSpan FirstRetryDelay { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>The longest wait between two reads of history that failed.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The clock delays are measured on, so tests can move it.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>
    /// The wait before read number <paramref name="failures"/> + 1: doubling from <see cref="FirstRetryDelay"/> up to
    /// <see cref="MaxRetryDelay"/>, each between half and all of that, so channels that failed together do not all
    /// read again together.
    /// </summary>
    public TimeSpan RetryDelay(int failures)
    {
        var full = Math.Min(MaxRetryDelay.TotalMilliseconds, FirstRetryDelay.TotalMilliseconds * Math.Pow(2, Math.Min(failures - 1, 20)));
        return TimeSpan.FromMilliseconds(full * (0.5 + (Random.Shared.NextDouble() / 2)));
    }
}
