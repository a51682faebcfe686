using System.IO.Pipelines;
using PushService.Gateway.Transport.Sockets;

namespace PushService.Gateway.Transport;

/// <summary>
/// How a connection's writer puts pushes on the wire, whatever the framing: a batch of pushes as one message, what the
/// transport itself owes its peer (a WebSocket pong), the closing frames, then one flush, batched with the send loop's
/// round where the socket allows. Called by one flush at a time, never concurrently.
/// </summary>
internal interface IPushTransport
{
    /// <summary>True when the transport owes its peer a frame of its own (<see cref="WritePendingControl"/>).</summary>
    bool HasPendingControl { get; }

    /// <summary>Writes the frame the transport owes its peer, if any.</summary>
    void WritePendingControl();

    /// <summary>Writes <paramref name="pushes"/> as one message, separated by <c>\n</c>; <paramref name="payloadBytes"/> is its length.</summary>
    void WriteMessage(ReadOnlySpan<ReadOnlyMemory<byte>> pushes, long payloadBytes);

    /// <summary>Writes the closing frames: <paramref name="disconnectPush"/> (unless the peer closed first), then the close.</summary>
    void WriteClose(int code, string reason, ReadOnlySpan<byte> disconnectPush);

    /// <summary>Hands what was written to <paramref name="batch"/>, which ends the flush through <paramref name="completion"/>; false to flush alone.</summary>
    bool TryFlushInBatch(SendBatch batch, IBatchedFlushCompletion completion);

    /// <summary>Sends what was written.</summary>
    ValueTask<FlushResult> FlushAsync();

    /// <summary>Ends the underlying connection at once, without a close handshake.</summary>
    void Abort();
}
