namespace PushService.Broker;

/// <summary>What to read from a channel's history.</summary>
public readonly record struct HistoryQuery
{
    /// <summary>Read publications after this position. Null reads the newest ones.</summary>
    public StreamPosition? Since { get; init; }

    /// <summary>
    /// At most this many publications. With <see cref="Since"/> the first ones after it, without it the newest.
    /// Null means all that history holds; 0 returns only the current position.
    /// </summary>
    public int? Limit { get; init; }
}

/// <summary>The answer to a history read.</summary>
/// <param name="Position">The channel's current position.</param>
/// <param name="Publications">The publications read, in offset order.</param>
public sealed record HistoryResult(StreamPosition Position, IReadOnlyList<Publication> Publications)
{
    /// <summary>
    /// True when <paramref name="since"/> is in the current epoch and every publication after it up to the current
    /// position was returned: a subscriber that had seen up to <paramref name="since"/> missed nothing.
    /// </summary>
    public bool IsCompleteSince(StreamPosition since)
    {
        if (!string.Equals(since.Epoch, Position.Epoch, StringComparison.Ordinal) || since.Offset > Position.Offset)
        {
            return false;
        }

        var missed = Position.Offset - since.Offset;
        return Publications.Count == missed && (missed == 0 || Publications[0].Offset == since.Offset + 1);
    }
}
