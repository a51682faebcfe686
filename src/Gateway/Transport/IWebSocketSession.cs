namespace PushService.Gateway.Transport;

/// <summary>What a <see cref="WebSocketTransport"/>'s receive loop tells the session above it, which gives messages their meaning.</summary>
internal interface IWebSocketSession
{
    /// <summary>The transport the session runs on.</summary>
    WebSocketTransport Transport { get; }

    /// <summary>The largest client message the session takes, in bytes; longer ones are read on and dropped.</summary>
    int MaxMessageBytes { get; }

    /// <summary>A frame came in (any frame: the connection is alive).</summary>
    void OnFrameReceived();

    /// <summary>A ping came in; its pong waits in the transport for the next flush.</summary>
    void OnPingReceived();

    /// <summary>
    /// A whole data message came in. <paramref name="message"/> is valid until the returned task completes; when
    /// <paramref name="tooLarge"/> it was over the size limit and its bytes were dropped.
    /// </summary>
    ValueTask OnMessageAsync(WebSocketOpcode type, ReadOnlyMemory<byte> message, bool tooLarge);

    /// <summary>
    /// Receiving ended (<paramref name="end"/>, with <paramref name="detail"/> for the log); the session finishes sending
    /// and returns the task that completes when it has.
    /// </summary>
    Task OnReceiveEnded(ReceiveEnd end, string? detail);
}

/// <summary>
/// Told by <see cref="WebSocketTransport.RunAsync"/> when a run it was given has ended, to close what the run held. The
/// frame that started the run can then return at once, where awaiting the run would keep it suspended beside the
/// transport's own for the connection's whole life.
/// </summary>
internal interface IWebSocketRunOwner
{
    /// <summary>The run ended, with <paramref name="failure"/> when it ended by an exception.</summary>
    ValueTask OnRunEndedAsync(IWebSocketSession session, Exception? failure);
}

/// <summary>Why a WebSocket's receive loop ended.</summary>
internal enum ReceiveEnd
{
    /// <summary>The client's close frame came.</summary>
    ClientClosed,

    /// <summary>The connection ended under the read (a reset, an abort, the peer gone).</summary>
    NetworkEnded,

    /// <summary>The client sent a frame RFC 6455 forbids (1002).</summary>
    ProtocolError,

    /// <summary>The client sent a text message that is not UTF-8 (1007).</summary>
    InvalidUtf8,
}
