using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using PushService.Gateway.Transport.Sockets;

namespace PushService.Gateway.Transport;

/// <summary>
/// One WebSocket's framing (RFC 6455) on its connection's pipes: the receive loop, which reads client frames, keeps the
/// pong a ping asks for and notes the client's close, and the server's frames written for the connection's writer
/// (<see cref="IPushTransport"/>). What a message means, and when to send what, is the session's
/// (<see cref="IWebSocketSession"/>).
/// </summary>
internal sealed class WebSocketTransport : IPushTransport
{
    private static ReadOnlySpan<byte> NewLine => "\n"u8;

    private readonly IDuplexPipe _pipe;
    private readonly Action<object> _abort;
    private readonly object _abortState;
    private byte[]? _pendingPong;

    /// <summary>A WebSocket on <paramref name="pipe"/>, already upgraded; <paramref name="abort"/>, called with
    /// <paramref name="abortState"/>, ends the underlying connection at once (a static delegate and a state: nothing
    /// allocated per connection for it).</summary>
    public WebSocketTransport(IDuplexPipe pipe, Action<object> abort, object abortState)
    {
        _pipe = pipe;
        _abort = abort;
        _abortState = abortState;
    }

    /// <summary>True once the client's close frame came: it has said all it will.</summary>
    public bool CloseReceived { get; private set; }

    /// <summary>The code of the client's close frame (1005 when it carried none); 0 before one came.</summary>
    public int ClientCloseCode { get; private set; }

    /// <summary>
    /// Reads client frames until the connection ends, telling <paramref name="session"/> of each, then waits for the
    /// session to finish sending. One method rather than a loop awaited by a wrapper: an idle connection holds one
    /// suspended state machine here, not two.
    /// </summary>
    /// <remarks>
    /// The read takes no cancellation token: aborting the connection ends a pending read (the transport's input fails
    /// with the abort, or the upgraded request's stream ends), and a token would hold a registration per idle connection.
    /// With an <paramref name="owner"/>, whatever ends the run (an exception included) goes to it, and the returned task
    /// does not fail.
    /// </remarks>
    public async Task RunAsync(IWebSocketSession session, IWebSocketRunOwner? owner = null)
    {
        // One try around the whole run rather than a receive method awaited here: that would be a second suspended
        // frame per idle connection.
        Exception? failure = null;
        try
        {
            var input = _pipe.Input;
            var end = ReceiveEnd.NetworkEnded;
            string? detail = null;
            Task sent;
            using var reader = new WebSocketReader(session.MaxMessageBytes);
            try
            {
                var done = false;
                while (!done)
                {
                    // With no data the read holds no buffer (the lean transport, and Kestrel's, rent one only when data is
                    // there): idle connections cost no receive memory.
                    var result = await input.ReadAsync();
                    var buffer = result.Buffer;
                    try
                    {
                        while (!done)
                        {
                            var read = reader.Read(ref buffer);
                            if (read == WebSocketReadResult.NeedMoreData)
                            {
                                break;
                            }

                            session.OnFrameReceived();
                            switch (read)
                            {
                                case WebSocketReadResult.Ping:
                                    // Only the latest ping needs its pong (RFC 6455 section 5.5.3).
                                    Volatile.Write(ref _pendingPong, reader.ControlPayload.ToArray());
                                    session.OnPingReceived();
                                    break;
                                case WebSocketReadResult.Close:
                                    ClientCloseCode = reader.ControlPayload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(reader.ControlPayload) : 1005;
                                    CloseReceived = true;
                                    end = ReceiveEnd.ClientClosed;
                                    done = true;
                                    break;
                                case WebSocketReadResult.ProtocolError:
                                    end = ReceiveEnd.ProtocolError;
                                    detail = reader.Error;
                                    done = true;
                                    break;
                                case WebSocketReadResult.InvalidUtf8:
                                    end = ReceiveEnd.InvalidUtf8;
                                    done = true;
                                    break;
                                case WebSocketReadResult.Message:
                                    try
                                    {
                                        await session.OnMessageAsync(reader.MessageType, reader.Message, reader.MessageTooLarge);
                                    }
                                    finally
                                    {
                                        reader.ReleaseMessage();
                                    }

                                    break;
                            }
                        }
                    }
                    finally
                    {
                        input.AdvanceTo(buffer.Start, buffer.End);
                    }

                    done |= result.IsCompleted || result.IsCanceled;
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException)
            {
                // The transport ended under the read: an abort (ConnectionAbortedException), a reset, or the peer gone.
                end = ReceiveEnd.NetworkEnded;
                detail = ex.Message;
            }
            finally
            {
                // Whatever ended the receive loop, sending must finish too: it answers a client's close, or just stops.
                sent = session.OnReceiveEnded(end, detail);
            }

            await sent;
        }
        catch (Exception ex) when (owner is not null)
        {
            failure = ex;
        }

        if (owner is not null)
        {
            await owner.OnRunEndedAsync(session, failure);
        }
    }

    /// <inheritdoc />
    public bool HasPendingControl => Volatile.Read(ref _pendingPong) is not null;

    /// <inheritdoc />
    public void WritePendingControl()
    {
        if (Interlocked.Exchange(ref _pendingPong, null) is { } pong)
        {
            WebSocketFrames.Write(_pipe.Output, WebSocketOpcode.Pong, pong);
        }
    }

    /// <inheritdoc />
    public void WriteMessage(ReadOnlySpan<ReadOnlyMemory<byte>> pushes, long payloadBytes)
    {
        // Synchronous copies into the socket's buffer: a push costs one copy and nothing else.
        var output = _pipe.Output;
        WebSocketFrames.WriteHeader(output, WebSocketOpcode.Text, payloadBytes);
        for (var i = 0; i < pushes.Length; i++)
        {
            if (i > 0)
            {
                output.Write(NewLine);
            }

            output.Write(pushes[i].Span);
        }
    }

    /// <inheritdoc />
    public void WriteClose(int code, string reason, ReadOnlySpan<byte> disconnectPush)
    {
        if (!CloseReceived)
        {
            // A client that closed first has said all it will; otherwise it learns why before the close frame.
            WebSocketFrames.Write(_pipe.Output, WebSocketOpcode.Text, disconnectPush);
        }

        WebSocketFrames.WriteClose(_pipe.Output, code, reason);
    }

    /// <inheritdoc />
    public bool TryFlushInBatch(SendBatch batch, IBatchedFlushCompletion completion) => batch.TryAdd(_pipe.Output, completion);

    /// <inheritdoc />
    public ValueTask<FlushResult> FlushAsync() => _pipe.Output.FlushAsync();

    /// <inheritdoc />
    public void Abort() => _abort(_abortState);
}
