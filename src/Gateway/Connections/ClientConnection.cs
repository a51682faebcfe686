using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using PushService.Gateway.Hub;
using PushService.Gateway.Protocol;
using PushService.Gateway.Telemetry;
using PushService.Gateway.Transport;
using PushService.Gateway.Transport.Sockets;

namespace PushService.Gateway.Connections;

/// <summary>
/// One client WebSocket: its identity once connected, its subscriptions, and its transport: a receive loop that
/// reads client frames and hands each message to the <see cref="CommandHandler"/>, and flushes run by its
/// <see cref="SendScheduler.SendLoop"/> that drain the bounded outbound queue, batching queued pushes into one
/// WebSocket message separated by <c>\n</c>, written straight into the transport.
/// </summary>
internal sealed partial class ClientConnection : IBatchedFlushCompletion
{
    /// <summary>The most pushes one text frame carries, in bytes; a larger push goes in a frame of its own.</summary>
    private const int BatchBytes = 64 * 1024;

    private static ReadOnlySpan<byte> NewLine => "\n"u8;

    private readonly IDuplexPipe _transport;
    private readonly Action<object> _abort;
    private readonly object _abortState;
    private byte[]? _pendingPong;
    private bool _closeReceived;
    private readonly OutboundQueue _queue;
    private readonly SendScheduler.SendLoop _sendLoop;
    private readonly TaskCompletionSource _sendingDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _flushState;
    private bool _flushCloses;
    private bool _closeSent;
    private readonly int _maxMessageBytes;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private int _closeRequested;
    private Disconnect? _disconnect;
    private long _closeRequestedAtTicks;
    private long _lastActivityTicks;
    private long _pingSentAtTicks;
    private readonly PushMetrics? _metrics;
    // What the flush in progress wrote: the oldest stamped publication's accepted time (0: none) and the payload bytes.
    private long _writeAcceptedAt;
    private long _writeBytes;
    private int _clientCloseCode;

    /// <summary>Wraps an upgraded connection; <paramref name="transport"/> carries client frames in and server frames out,
    /// <paramref name="abort"/>, called with <paramref name="abortState"/>, ends the underlying connection at once.</summary>
    public ClientConnection(IDuplexPipe transport, Action<object> abort, object abortState, string id, ConnectionSettings settings, SendScheduler.SendLoop sendLoop, TimeProvider time, ILogger logger)
    {
        _transport = transport;
        _abort = abort;
        _abortState = abortState;
        Id = id;
        _queue = new OutboundQueue(settings.QueueMaxBytes, settings.QueueMaxMessages);
        _sendLoop = sendLoop;
        _maxMessageBytes = settings.MaxMessageBytes;
        _time = time;
        _logger = logger;
        _metrics = settings.Metrics;
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

    /// <summary>
    /// Where in the second half of the first ping interval this connection's first ping falls, from 0 (at its end) to 1
    /// (at its middle); drawn at random, so connections opened together are not all pinged, nor all answer, at once.
    /// </summary>
    public float FirstPingLead { get; } = Random.Shared.NextSingle();

    public long LastActivityTicks => Volatile.Read(ref _lastActivityTicks);

    public long PingSentAtTicks => Volatile.Read(ref _pingSentAtTicks);

    public long CloseRequestedAtTicks => Volatile.Read(ref _closeRequestedAtTicks);

    public bool IsClosing => Volatile.Read(ref _closeRequested) != 0;

    /// <summary>The connection's subscriptions by channel; changed by <see cref="SubscriptionLifecycle"/> only.</summary>
    /// <remarks>Sized for the usual handful: the default capacity costs 300 bytes per connection before any subscription.</remarks>
    public ConcurrentDictionary<string, Subscription> Subscriptions { get; } = new(concurrencyLevel: 1, capacity: 3, StringComparer.Ordinal);

    /// <summary>
    /// True once a subscription with an expiring token was added: only then does the heartbeat walk the subscriptions
    /// (walking a <see cref="ConcurrentDictionary{TKey, TValue}"/> allocates, every second, for every connection).
    /// </summary>
    public bool HasExpiringSubscriptions
    {
        get => Volatile.Read(ref _hasExpiringSubscriptions);
        set => Volatile.Write(ref _hasExpiringSubscriptions, value);
    }

    private bool _hasExpiringSubscriptions;

    /// <summary>When the send loop last flushed this connection (<see cref="TimeProvider.GetTimestamp"/>); 0 before the first time.</summary>
    public long LastFlushTimestamp { get; private set; }

    /// <summary>The outbound queue, for benchmarks that measure fan-out without a send loop draining it.</summary>
    internal OutboundQueue Queue => _queue;

    /// <summary>Why the server closed the connection, when it did.</summary>
    public Disconnect? ClosedWith => _disconnect;

    /// <summary>Who ended the connection: the server unless the client's close frame, or the network, came first.</summary>
    public string ClosedBy { get; private set; } = CloseInitiator.Server;

    /// <summary>The close code the connection ended with, as the metrics report it: the server's, the client's, or 1006.</summary>
    public int CloseCode => ClosedBy switch
    {
        CloseInitiator.Client => _clientCloseCode,
        CloseInitiator.Network => 1006,
        _ => (_disconnect ?? Disconnect.Normal).Code,
    };

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

    /// <summary>
    /// Commands per second this connection may send, in bursts of up to twice that: a token bucket the heartbeat refills
    /// every second. Two integers rather than a <c>TokenBucketRateLimiter</c>, which costs a few hundred bytes per
    /// connection (its lock and queue) for a budget one thread spends and one refills.
    /// </summary>
    public int CommandsPerSecond
    {
        get => _commandsPerSecond;
        init
        {
            _commandsPerSecond = value;
            _commandTokens = 2 * value;
        }
    }

    private readonly int _commandsPerSecond;
    private int _commandTokens;

    /// <summary>Takes one command from the budget; false when it is spent.</summary>
    public bool TryTakeCommand() => Interlocked.Decrement(ref _commandTokens) >= 0;

    /// <summary>Adds a second's worth of commands, up to the burst.</summary>
    public void ReplenishCommands()
    {
        int current, next;
        do
        {
            current = Volatile.Read(ref _commandTokens);
            next = Math.Min(Math.Max(current, 0) + _commandsPerSecond, 2 * _commandsPerSecond);
        }
        while (Interlocked.CompareExchange(ref _commandTokens, next, current) != current);
    }

    /// <summary>
    /// Queues a frame shared with other subscribers; a full queue closes the connection with 4500. A publication's push
    /// carries the time it was accepted (<paramref name="acceptedAtTicks"/>, UTC ticks), for the fan-out latency.
    /// </summary>
    public void Send(ReadOnlyMemory<byte> frame, long acceptedAtTicks = 0)
    {
        if (_queue.TryEnqueue(frame, acceptedAtTicks))
        {
            Schedule();
        }
        else if (!IsClosing)
        {
            RequestClose(Disconnect.SlowConsumer);
        }
    }

    /// <summary>Queues a control push (ping, unsubscribed) for the send loop. Control frames are few and small, so they count toward the bound but never trip it.</summary>
    public void SendControl(ReadOnlyMemory<byte> frame)
    {
        if (_queue.TryEnqueueControl(frame))
        {
            Schedule();
        }
    }

    /// <summary>
    /// Queues a command's reply and sends it from this thread at once, unless a flush is already scheduled or running
    /// (which then takes it along). A reply waits neither for the coalescing window, which is there to batch pushes, nor
    /// for a send loop to wake: the thread that handled the command is running anyway.
    /// </summary>
    public void Reply(ReadOnlyMemory<byte> frame)
    {
        if (_queue.TryEnqueueControl(frame))
        {
            FlushNow();
        }
    }

    /// <summary>Queues a reply to be sent by the next <see cref="FlushNow"/> (or any flush before it).</summary>
    internal void EnqueueReply(ReadOnlyMemory<byte> frame) => _queue.TryEnqueueControl(frame);

    /// <summary>
    /// Flushes what is queued from this thread, unless a flush is already scheduled or running (which then takes it
    /// along): for replies and for the close that answers a client's close.
    /// </summary>
    internal void FlushNow()
    {
        if (Interlocked.CompareExchange(ref _flushState, 1, 0) == 0)
        {
            Flush(_time.GetTimestamp());
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

    /// <summary>The hub the connection is registered with; set before the loops start.</summary>
    public LocalHub? Hub { get; set; }

    /// <summary>
    /// Starts closing: the writer sends what is queued (or, for a slow consumer, drops it), then a <c>disconnect</c> push
    /// and the close frame. The heartbeat aborts the socket if the close does not finish within the close timeout.
    /// </summary>
    public void RequestClose(Disconnect disconnect) => RequestClose(disconnect, flushHere: false);

    /// <param name="disconnect">Why the server closes.</param>
    /// <param name="flushHere">Send the close from this thread now, as a reply (the receive loop answering the client's close).</param>
    private void RequestClose(Disconnect disconnect, bool flushHere)
    {
        if (Interlocked.Exchange(ref _closeRequested, 1) != 0)
        {
            return;
        }

        _disconnect = disconnect;
        if (disconnect == Disconnect.SlowConsumer)
        {
            _metrics?.SlowConsumer();
        }

        Volatile.Write(ref _closeRequestedAtTicks, _time.GetUtcNow().UtcTicks);
        Log.Closing(_logger, Id, disconnect.Code, disconnect.Reason);
        _queue.Complete();
        if (flushHere)
        {
            FlushNow();
        }
        else
        {
            Schedule();
        }
    }

    /// <summary>Ends the connection at once, without a close handshake.</summary>
    public void Abort()
    {
        Interlocked.Exchange(ref _closeRequested, 1);
        _queue.Complete();
        _abort(_abortState);
        _sendingDone.TrySetResult();
    }

    /// <summary>
    /// Runs the connection until it closes: the receive loop here, the sends on the connection's send loop. One method
    /// rather than a loop awaited by a wrapper: an idle connection holds one suspended state machine here, not two.
    /// </summary>
    /// <remarks>
    /// The read takes no cancellation token: aborting the connection ends a pending read (the transport's input fails
    /// with the abort, or the upgraded request's stream ends), and a token would hold a registration per idle connection.
    /// </remarks>
    public async Task RunAsync(Func<ClientConnection, ReadOnlyMemory<byte>, ValueTask> handleMessage)
    {
        var input = _transport.Input;
        using var reader = new WebSocketReader(_maxMessageBytes);
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

                        Volatile.Write(ref _lastActivityTicks, _time.GetUtcNow().UtcTicks);
                        switch (read)
                        {
                            case WebSocketReadResult.Ping:
                                // Only the latest ping needs its pong (RFC 6455 section 5.5.3).
                                Volatile.Write(ref _pendingPong, reader.ControlPayload.ToArray());
                                Schedule();
                                break;
                            case WebSocketReadResult.Close:
                                _closeReceived = true;
                                _clientCloseCode = reader.ControlPayload.Length >= 2
                                    ? System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(reader.ControlPayload)
                                    : 1005;
                                done = true;
                                break;
                            case WebSocketReadResult.ProtocolError:
                                Log.ProtocolError(_logger, Id, reader.Error ?? "");
                                RequestClose(Disconnect.ProtocolError);
                                done = true;
                                break;
                            case WebSocketReadResult.InvalidUtf8:
                                RequestClose(Disconnect.InvalidPayload);
                                done = true;
                                break;
                            case WebSocketReadResult.Message:
                                try
                                {
                                    await HandleMessageAsync(reader, handleMessage);
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
            Log.ReceiveEnded(_logger, Id, ex.Message);
        }
        finally
        {
            // Whatever ended the receive loop, sending must finish too: it answers a client's close, or just stops.
            if (!IsClosing)
            {
                ClosedBy = _closeReceived ? CloseInitiator.Client : CloseInitiator.Network;
            }

            RequestClose(Disconnect.Normal, flushHere: true);
        }

        await _sendingDone.Task;
    }

    private ValueTask HandleMessageAsync(WebSocketReader reader, Func<ClientConnection, ReadOnlyMemory<byte>, ValueTask> handleMessage)
    {
        if (IsClosing)
        {
            // Closing: keep reading only to see the client's close frame.
            return ValueTask.CompletedTask;
        }

        if (reader.MessageTooLarge)
        {
            RequestClose(Disconnect.MessageTooLarge);
            return ValueTask.CompletedTask;
        }

        if (reader.MessageType == WebSocketOpcode.Binary)
        {
            RequestClose(Disconnect.BadRequest);
            return ValueTask.CompletedTask;
        }

        return handleMessage(this, reader.Message);
    }

    /// <summary>
    /// Sends what is queued; called by the send loop, never twice at once. When the flush completes synchronously (the
    /// usual case) the loop goes straight on to the next connection; otherwise the rest finishes on the flush's continuation.
    /// With a <paramref name="batch"/>, a socket of the lean transport is sent with the rest of the loop's round, and
    /// the flush ends when the batch is submitted (<see cref="OnFlushed"/>).
    /// </summary>
    public void Flush(long now, SendBatch? batch = null)
    {
        LastFlushTimestamp = now;
        if (_sendingDone.Task.IsCompleted)
        {
            AfterFlush();
            return;
        }

        ValueTask<FlushResult> flush;
        try
        {
            var output = _transport.Output;
            _flushCloses = WriteDue(output);
            if (batch is not null && batch.TryAdd(output, this))
            {
                return;
            }

            flush = output.FlushAsync();
        }
        catch (Exception ex)
        {
            FlushFailed(ex);
            return;
        }

        if (flush.IsCompletedSuccessfully)
        {
            OnFlushed(flush.Result);
        }
        else
        {
            _ = AwaitFlushAsync(flush);
        }
    }

    private async Task AwaitFlushAsync(ValueTask<FlushResult> flush)
    {
        FlushResult result;
        try
        {
            result = await flush;
        }
        catch (Exception ex)
        {
            FlushFailed(ex);
            return;
        }

        OnFlushed(result);
    }

    /// <summary>A flush ended: closed, or the socket is gone and nothing more can be sent, ends sending for good.</summary>
    public void OnFlushed(FlushResult result)
    {
        if (_metrics is { } metrics && _writeBytes > 0)
        {
            metrics.Sent(_writeBytes);
            if (_writeAcceptedAt > 0)
            {
                metrics.FannedOut(_writeAcceptedAt, _time.GetUtcNow().UtcTicks);
            }
        }

        _writeBytes = 0;
        _writeAcceptedAt = 0;
        if (_flushCloses || result.IsCompleted)
        {
            _sendingDone.TrySetResult();
        }

        AfterFlush();
    }

    private void FlushFailed(Exception ex)
    {
        if (ex is OperationCanceledException or IOException or InvalidOperationException or ObjectDisposedException)
        {
            Log.SendEnded(_logger, Id, ex.Message);
        }
        else
        {
            // Nothing may escape into the send loop, which serves every other connection on its core too.
            Log.SendFailed(_logger, Id, ex);
        }

        Abort();
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
        else if (!_queue.IsEmpty || Volatile.Read(ref _pendingPong) is not null || (IsClosing && !_closeSent))
        {
            Schedule();
        }
    }

    /// <summary>
    /// Writes everything due into the transport in one go (a pong, the queued pushes batched into text frames, the closing
    /// frames), to be flushed once. The writes are synchronous copies into the socket's buffer. True when the closing
    /// frames were among them.
    /// </summary>
    private bool WriteDue(PipeWriter output)
    {
        if (Interlocked.Exchange(ref _pendingPong, null) is { } pong)
        {
            WebSocketFrames.Write(output, WebSocketOpcode.Pong, pong);
        }

        if (_disconnect == Disconnect.SlowConsumer)
        {
            // What a slow consumer had queued is dropped: its SDK recovers it from history.
            _queue.Clear();
        }
        else
        {
            WriteQueued(output);
        }

        var closing = IsClosing && !_closeSent;
        if (closing)
        {
            _closeSent = true;
            WriteClose(output);
        }

        return closing;
    }

    /// <summary>Writes the queued pushes as text frames, each carrying as many pushes as fit a batch, separated by <c>\n</c>.</summary>
    private void WriteQueued(PipeWriter output)
    {
        var slots = default(FrameBatch);
        Span<ReadOnlyMemory<byte>> batch = slots;
        while (true)
        {
            var count = _queue.DequeueBatch(batch, BatchBytes, out var payloadBytes, out var acceptedAt);
            if (count == 0)
            {
                return;
            }

            _writeBytes += payloadBytes;
            if (acceptedAt > 0 && (_writeAcceptedAt == 0 || acceptedAt < _writeAcceptedAt))
            {
                _writeAcceptedAt = acceptedAt;
            }

            WebSocketFrames.WriteHeader(output, WebSocketOpcode.Text, payloadBytes);
            for (var i = 0; i < count; i++)
            {
                if (i > 0)
                {
                    output.Write(NewLine);
                }

                output.Write(batch[i].Span);
            }

            batch[..count].Clear();
        }
    }

    private void WriteClose(PipeWriter output)
    {
        var disconnect = _disconnect ?? Disconnect.Normal;
        if (!_closeReceived)
        {
            // A client that closed first has said all it will; otherwise it learns why before the close frame.
            WebSocketFrames.Write(output, WebSocketOpcode.Text, FrameEncoder.DisconnectPush(disconnect));
        }

        WebSocketFrames.WriteClose(output, disconnect.Code, disconnect.Reason);
    }

    /// <summary>Room for the pushes of one batch, on the stack.</summary>
    [InlineArray(64)]
    private struct FrameBatch
    {
        private ReadOnlyMemory<byte> _frame;
    }

    private static partial class Log
    {
        [LoggerMessage(200, LogLevel.Debug, "Connection {ConnectionId} closing with {Code} ({Reason}).")]
        public static partial void Closing(ILogger logger, string connectionId, int code, string reason);

        [LoggerMessage(201, LogLevel.Debug, "Connection {ConnectionId} receive ended: {Message}")]
        public static partial void ReceiveEnded(ILogger logger, string connectionId, string message);

        [LoggerMessage(202, LogLevel.Debug, "Connection {ConnectionId} send ended: {Message}")]
        public static partial void SendEnded(ILogger logger, string connectionId, string message);

        [LoggerMessage(204, LogLevel.Debug, "Connection {ConnectionId} broke the WebSocket protocol: {Error}")]
        public static partial void ProtocolError(ILogger logger, string connectionId, string error);

        [LoggerMessage(203, LogLevel.Error, "Sending to connection {ConnectionId} failed unexpectedly; it was aborted.")]
        public static partial void SendFailed(ILogger logger, string connectionId, Exception exception);
    }
}

/// <summary>Per-connection limits, taken once from the options.</summary>
internal readonly record struct ConnectionSettings(long QueueMaxBytes, int QueueMaxMessages, int MaxMessageBytes)
{
    /// <summary>Where the connection reports bytes sent, fan-out latency and slow-consumer closes; none in benchmarks of the bare path.</summary>
    public PushMetrics? Metrics { get; init; }
}

/// <summary>The values of the <c>initiator</c> tag of <c>pushservice.connections.closed</c>.</summary>
internal static class CloseInitiator
{
    public const string Server = "server";
    public const string Client = "client";
    public const string Network = "network";
}
