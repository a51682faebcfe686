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
    public bool IsCompleteSince(StreamPosition since) => ContinuesFrom(since) && Publications.Count == Position.Offset - since.Offset;

    /// <summary>
    /// True when <paramref name="since"/> is in the current epoch, not past the current position, and the publications
    /// returned are the ones right after it, none missing between them: all of them, or the first of them as a page read
    /// with a limit returns. An empty answer continues only when nothing was published after <paramref name="since"/>.
    /// </summary>
    public bool ContinuesFrom(StreamPosition since)
    {
        if (!string.Equals(since.Epoch, Position.Epoch, StringComparison.Ordinal) || since.Offset > Position.Offset)
        {
            return false;
        }

        if (Publications.Count == 0)
        {
            return since.Offset == Position.Offset;
        }

        for (var i = 0; i < Publications.Count; i++)
        {
            if (Publications[i].Offset != since.Offset + 1 + i)
            {
                return false;
            }
        }

        return true;
    }
}
