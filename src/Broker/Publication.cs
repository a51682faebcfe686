namespace PushService.Broker;

/// <summary>
/// One stored and delivered publication. <see cref="Data"/> holds the published JSON value as
/// raw UTF-8 bytes; it was validated once at the edge and is never parsed again.
/// </summary>
public sealed class Publication
{
    /// <summary>Creates a publication.</summary>
    public Publication(string channel, long offset, string epoch, ReadOnlyMemory<byte> data)
    {
        Channel = channel;
        Offset = offset;
        Epoch = epoch;
        Data = data;
    }

    /// <summary>The channel it was published to.</summary>
    public string Channel { get; }

    /// <summary>Its offset in the channel, gap-free and increasing by one within an epoch.</summary>
    public long Offset { get; }

    /// <summary>The epoch of the channel's stream when it was published.</summary>
    public string Epoch { get; }

    /// <summary>The published JSON value as raw UTF-8 bytes.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>W3C trace parent of the publishing request, when one was recorded.</summary>
    public string? TraceParent { get; init; }

    /// <summary>When the publishing node accepted it (UTC ticks); 0 for publications read back from history.</summary>
    public long AcceptedAtTicks { get; init; }
}
