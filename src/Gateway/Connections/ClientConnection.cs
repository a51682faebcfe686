using System.Buffers;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using Microsoft.Extensions.Logging;
using PushService.Gateway.Hub;
using PushService.Gateway.Protocol;

namespace PushService.Gateway.Connections;

/// <summary>
/// One client WebSocket: its identity once connected, its subscriptions, and its transport: a receive loop that
/// hands each message to the <see cref="CommandHandler"/>, and a writer loop that drains the bounded outbound
/// queue, batching queued frames into one WebSocket message separated by <c>\n</c>.
/// </summary>
internal sealed partial class ClientConnection
{
    /// <summary>Batches are built in a pooled buffer of this size: large enough to batch a burst, small enough to rent freely.</summary>
    private const int BatchBufferBytes = 64 * 1024;

    private static readonly byte[] NewLine = "\n"u8.ToArray();

    private readonly WebSocket _socket;
    private readonly OutboundQueue _queue;
    private readonly SendScheduler.SendLoop _sendLoop;
    private readonly TaskCompletionSource _sendingDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _flushState;
    private bool _closeSent;
    private readonly int _maxMessageBytes;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private int _closeRequested;
    private Disconnect? _disconnect;
    private long _closeRequestedAtTicks;
    private long _lastActivityTicks;
    private long _pingSentAtTicks;

    public ClientConnection(WebSocket socket, string id, ConnectionSettings settings, SendScheduler.SendLoop sendLoop, TimeProvider time, ILogger logger)
    {
        _socket = socket;
        Id = id;
        _queue = new OutboundQueue(settings.QueueMaxBytes, settings.QueueMaxMessages);
        _sendLoop = sendLoop;
        _maxMessageBytes = settings.MaxMessageBytes;
        _time = time;
        _logger = logger;
        OpenedAtTicks = time.GetUtcNow().UtcTicks;
        _lastActivityTicks = OpenedAtTicks;
    }

    public string Id { get; }

    /// <summary>The user id from the connection token; empty for anonymous clients.</summary>
    public string UserId { get; private set; } = "";

    public string? ClientName { get; private set; }

    public string? ClientVersion { get; private set; }

    public bool IsConnected { get; private set; }

    public long OpenedAtTicks { get; }

    public long LastActivityTicks => Volatile.Read(ref _lastActivityTicks);

    public long PingSentAtTicks => Volatile.Read(ref _pingSentAtTicks);

    public long CloseRequestedAtTicks => Volatile.Read(ref _closeRequestedAtTicks);

    public bool IsClosing => Volatile.Read(ref _closeRequested) != 0;

    /// <summary>The connection's subscriptions by channel; changed by its own commands and by server-side unsubscribes.</summary>
    public ConcurrentDictionary<string, Subscription> Subscriptions { get; } = new(StringComparer.Ordinal);

    /// <summary>When the send loop last flushed this connection (<see cref="TimeProvider.GetTimestamp"/>); 0 before the first time.</summary>
    public long LastFlushTimestamp { get; private set; }

    /// <summary>The outbound queue, for benchmarks that measure fan-out without a send loop draining it.</summary>
    internal OutboundQueue Queue => _queue;

    /// <summary>Why the server closed the connection, when it did.</summary>
    public Disconnect? ClosedWith => _disconnect;

    public void MarkConnected(string userId, string? name, string? version, DateTimeOffset? expiresAt)
    {
        UserId = userId;
        ClientName = name;
        ClientVersion = version;
        TokenExpiresAtTicks = expiresAt?.UtcTicks ?? 0;
        IsConnected = true;
    }

    /// <summary>When the connection token expires (UTC ticks); 0 when it does not.</summary>
    public long TokenExpiresAtTicks
    {
        get => Volatile.Read(ref _tokenExpiresAtTicks);
        set => Volatile.Write(ref _tokenExpiresAtTicks, value);
    }

    private long _tokenExpiresAtTicks;

    /// <summary>Commands this connection may still send; refilled by the heartbeat every second.</summary>
    public System.Threading.RateLimiting.TokenBucketRateLimiter? CommandLimiter { get; init; }

    /// <summary>Queues a frame shared with other subscribers; a full queue closes the connection with 4500.</summary>
    public void Send(ReadOnlyMemory<byte> frame)
    {
        if (_queue.TryEnqueue(frame))
        {
            Schedule();
        }
        else if (!IsClosing)
        {
            RequestClose(Disconnect.SlowConsumer);
        }
    }

    /// <summary>Queues a reply or control push. Replies are few and small, so they count toward the bound but never trip it.</summary>
    public void SendControl(ReadOnlyMemory<byte> frame)
    {
        if (_queue.TryEnqueueControl(frame))
        {
            Schedule();
        }
    }

    /// <summary>Puts the connection on its send loop's list, unless it is already there or being flushed.</summary>
    private void Schedule()
    {
        if (Interlocked.CompareExchange(ref _flushState, 1, 0) == 0)
        {
            _sendLoop.Schedule(this);
        }
    }

    public void SendPing()
    {
        Volatile.Write(ref _pingSentAtTicks, _time.GetUtcNow().UtcTicks);
        SendControl(FrameEncoder.PingPush);
    }

    /// <summary>Removes a subscription on the server's initiative and tells the client.</summary>
    public void ServerUnsubscribe(Subscription subscription, byte[] push)
    {
        if (Subscriptions.TryRemove(new KeyValuePair<string, Subscription>(subscription.Channel, subscription)))
        {
            SendControl(push);
            _ = Hub!.RemoveAsync(subscription).AsTask();
        }
    }

    /// <summary>The hub the connection is registered with; set before the loops start.</summary>
    public LocalHub? Hub { get; set; }

    /// <summary>
    /// Starts closing: the writer sends what is queued (or, for a slow consumer, drops it), then a <c>disconnect</c> push
    /// and the close frame. The heartbeat aborts the socket if the close does not finish within the close timeout.
    /// </summary>
    public void RequestClose(Disconnect disconnect)
    {
        if (Interlocked.Exchange(ref _closeRequested, 1) != 0)
        {
            return;
        }

        _disconnect = disconnect;
        Volatile.Write(ref _closeRequestedAtTicks, _time.GetUtcNow().UtcTicks);
        Log.Closing(_logger, Id, disconnect.Code, disconnect.Reason);
        _queue.Complete();
        Schedule();
    }

    /// <summary>Ends the connection at once, without a close handshake.</summary>
    public void Abort()
    {
        Interlocked.Exchange(ref _closeRequested, 1);
        _queue.Complete();
        _socket.Abort();
        _sendingDone.TrySetResult();
    }

    /// <summary>Runs the connection until it closes: the receive loop here, the writer beside it.</summary>
    public async Task RunAsync(Func<ClientConnection, ReadOnlyMemory<byte>, ValueTask> handleMessage, CancellationToken stopping)
    {
        try
        {
            await ReceiveLoopAsync(handleMessage, stopping);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
            Log.ReceiveEnded(_logger, Id, ex.Message);
        }
        finally
        {
            // Whatever ended the receive loop, sending must finish too: it answers a client's close, or just stops.
            RequestClose(Disconnect.Normal);
        }

        await _sendingDone.Task;
    }

    private async Task ReceiveLoopAsync(Func<ClientConnection, ReadOnlyMemory<byte>, ValueTask> handleMessage, CancellationToken stopping)
    {
        while (_socket.State is WebSocketState.Open or WebSocketState.CloseSent)
        {
            // A zero-byte read waits for data without holding a buffer: idle connections cost no receive memory.
            var probe = await _socket.ReceiveAsync(Memory<byte>.Empty, stopping);
            if (probe.MessageType == WebSocketMessageType.Close)
            {
                return;
            }

            var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(4096, _maxMessageBytes + 1));
            try
            {
                // An empty message is consumed whole by the zero-byte read; it is a frame like any other.
                var message = probe.EndOfMessage
                    ? (Buffer: buffer, Length: 0, Type: probe.MessageType, TooLarge: false)
                    : await ReadMessageAsync(buffer, stopping);
                buffer = message.Buffer;
                if (message.Type == WebSocketMessageType.Close)
                {
                    return;
                }

                Volatile.Write(ref _lastActivityTicks, _time.GetUtcNow().UtcTicks);
                if (IsClosing)
                {
                    // Closing: keep reading only to see the client's close frame.
                    continue;
                }

                if (message.TooLarge)
                {
                    RequestClose(Disconnect.MessageTooLarge);
                    continue;
                }

                if (message.Type == WebSocketMessageType.Binary)
                {
                    RequestClose(Disconnect.BadRequest);
                    continue;
                }

                await handleMessage(this, buffer.AsMemory(0, message.Length));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>Reads one whole message, growing the buffer up to the size limit; past it, reads on and discards.</summary>
    private async ValueTask<(byte[] Buffer, int Length, WebSocketMessageType Type, bool TooLarge)> ReadMessageAsync(byte[] buffer, CancellationToken stopping)
    {
        var length = 0;
        var tooLarge = false;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (buffer.Length > _maxMessageBytes)
                {
                    // Over the limit: discard what follows, keep the buffer as scratch.
                    tooLarge = true;
                    length = 0;
                }
                else
                {
                    var larger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, _maxMessageBytes + 1));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
            }

            var result = await _socket.ReceiveAsync(buffer.AsMemory(length), stopping);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return (buffer, 0, WebSocketMessageType.Close, false);
            }

            length += result.Count;
            if (result.EndOfMessage)
            {
                return (buffer, length, result.MessageType, tooLarge || length > _maxMessageBytes);
            }
        }
    }

    /// <summary>
    /// Sends what is queued; called by the send loop, never twice at once. When the sends complete synchronously (the usual
    /// case) the loop goes straight on to the next connection; otherwise the rest finishes on the send's continuation.
    /// </summary>
    public void Flush(long now)
    {
        LastFlushTimestamp = now;
        var flushing = FlushCoreAsync();
        if (flushing.IsCompleted)
        {
            flushing.GetAwaiter().GetResult();
            AfterFlush();
        }
        else
        {
            _ = AfterFlushAsync(flushing);
        }
    }

    private async Task AfterFlushAsync(ValueTask flushing)
    {
        await flushing;
        AfterFlush();
    }

    private void AfterFlush()
    {
        // A full fence: a frame or close queued while this flush ran is seen below, or its own Schedule() succeeds.
        Interlocked.Exchange(ref _flushState, 0);
        if (_sendingDone.Task.IsCompleted)
        {
            _queue.Clear();
        }
        else if (!_queue.IsEmpty || (IsClosing && !_closeSent))
        {
            Schedule();
        }
    }

    private async ValueTask FlushCoreAsync()
    {
        if (_sendingDone.Task.IsCompleted)
        {
            return;
        }

        try
        {
            while (_disconnect != Disconnect.SlowConsumer && _queue.TryPeek(out _))
            {
                await SendBatchAsync();
            }

            if (_disconnect == Disconnect.SlowConsumer)
            {
                // What a slow consumer had queued is dropped: its SDK recovers it from history.
                _queue.Clear();
            }

            if (IsClosing && !_closeSent)
            {
                _closeSent = true;
                await SendCloseAsync();
                _sendingDone.TrySetResult();
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            Log.SendEnded(_logger, Id, ex.Message);
            _socket.Abort();
            _sendingDone.TrySetResult();
        }
        catch (Exception ex)
        {
            // Nothing may escape into the send loop, which serves every other connection on its core too.
            Log.SendFailed(_logger, Id, ex);
            _socket.Abort();
            _sendingDone.TrySetResult();
        }
    }

    private async ValueTask SendBatchAsync()
    {
        if (!_queue.TryPeek(out var first))
        {
            return;
        }

        if (first.Length >= BatchBufferBytes / 2)
        {
            // A large frame goes out alone, straight from the shared bytes.
            _queue.TryDequeue(out first);
            await _socket.SendAsync(first, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
            return;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(BatchBufferBytes);
        try
        {
            var length = 0;
            while (_queue.TryPeek(out var frame))
            {
                var needed = frame.Length + (length > 0 ? 1 : 0);
                if (length + needed > buffer.Length)
                {
                    break;
                }

                _queue.TryDequeue(out frame);
                if (length > 0)
                {
                    buffer[length++] = NewLine[0];
                }

                frame.Span.CopyTo(buffer.AsSpan(length));
                length += frame.Length;
            }

            await _socket.SendAsync(buffer.AsMemory(0, length), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async ValueTask SendCloseAsync()
    {
        var disconnect = _disconnect ?? Disconnect.Normal;
        if (_socket.State is WebSocketState.Open)
        {
            await _socket.SendAsync(FrameEncoder.DisconnectPush(disconnect), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
        }

        if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            await _socket.CloseOutputAsync((WebSocketCloseStatus)disconnect.Code, disconnect.Reason, CancellationToken.None);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(200, LogLevel.Debug, "Connection {ConnectionId} closing with {Code} ({Reason}).")]
        public static partial void Closing(ILogger logger, string connectionId, int code, string reason);

        [LoggerMessage(201, LogLevel.Debug, "Connection {ConnectionId} receive ended: {Message}")]
        public static partial void ReceiveEnded(ILogger logger, string connectionId, string message);

        [LoggerMessage(202, LogLevel.Debug, "Connection {ConnectionId} send ended: {Message}")]
        public static partial void SendEnded(ILogger logger, string connectionId, string message);

        [LoggerMessage(203, LogLevel.Error, "Sending to connection {ConnectionId} failed unexpectedly; it was aborted.")]
        public static partial void SendFailed(ILogger logger, string connectionId, Exception exception);
    }
}

/// <summary>Per-connection limits, taken once from the options.</summary>
internal readonly record struct ConnectionSettings(long QueueMaxBytes, int QueueMaxMessages, int MaxMessageBytes);
