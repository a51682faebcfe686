namespace PushService.Broker;

/// <summary>
/// A place in a channel's stream: the offset of the last publication and the epoch it belongs to.
/// Offsets are only comparable within one epoch; a new epoch means the history was lost.
/// </summary>
/// <param name="Offset">The offset of the newest publication (0 when nothing was published in this epoch).</param>
/// <param name="Epoch">The stream's epoch.</param>
public readonly record struct StreamPosition(long Offset, string Epoch);
