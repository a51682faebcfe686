namespace PushService.Broker;

/// <summary>How one publication is stored: the channel namespace's history settings and an optional idempotency key.</summary>
public readonly record struct PublishOptions
{
    /// <summary>How many publications the channel's history keeps. 0 keeps none (offsets still advance).</summary>
    public int HistorySize { get; init; }

    /// <summary>How long each publication stays in history.</summary>
    public TimeSpan HistoryTtl { get; init; }

    /// <summary>
    /// When set, a second publish with the same key on the same channel within the broker's idempotency
    /// window returns the first result and publishes nothing.
    /// </summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>W3C trace parent to carry with the publication.</summary>
    public string? TraceParent { get; init; }

    /// <summary>
    /// When the publishing node accepted the publication (UTC ticks; 0: not stamped). It travels with the publication so
    /// every receiving node can measure its fan-out latency against the same start.
    /// </summary>
    public long AcceptedAtTicks { get; init; }
}

/// <summary>The outcome of a publish.</summary>
/// <param name="Position">The publication's offset and epoch.</param>
/// <param name="Duplicate">True when an earlier publish with the same idempotency key answered this one.</param>
public readonly record struct PublishResult(StreamPosition Position, bool Duplicate);
