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
/// The sending half of one connection: its bounded outbound queue, and the one flush at a time that empties it into the
/// transport, batching queued pushes into one message each, ending with the closing frames. Three kinds of thread ask
/// for a flush (the send loop for pushes, the receive loop for replies and the close answering the client's, any
/// thread closing the connection); one compare-and-swap on <c>_flushState</c> lets exactly one of them run it, and a
/// flush that ends reschedules itself for whatever was queued meanwhile.
/// </summary>
internal sealed partial class ConnectionWriter : Outbox, IBatchedFlushCompletion
{
    /// <summary>The most pushes one message carries, in bytes; a larger push goes in a message of its own.</summary>
    private const int BatchBytes = 64 * 1024;

    private readonly IPushTransport _transport;
    private readonly OutboundQueue _queue;
    private readonly SendScheduler.SendLoop _sendLoop;
    private readonly TimeProvider _time;
    private readonly PushMetrics? _metrics;
    private readonly ILogger _logger;
    private readonly string _connectionId;
    private int _flushState;
    private bool _flushCloses;
    private bool _closeSent;
    private int _closeRequested;
    private Disconnect? _disconnect;
    private long _closeRequestedAtTicks;

    // 1 once nothing more will be sent; the task for a caller that waits before then is made only for it: the receive
    // loop waits only when the close did not go out at once, and an idle connection holds no task.
    private int _finished;
    private TaskCompletionSource? _finishedWaiter;

    // What the flush in progress wrote: the oldest stamped publication's accepted time (0: none) and the payload bytes.
    private long _writeAcceptedAt;
    private long _writeBytes;

    public ConnectionWriter(IPushTransport transport, string connectionId, ConnectionSettings settings, SendScheduler.SendLoop sendLoop, TimeProvider time, ILogger logger)
    {
        _transport = transport;
        _connectionId = connectionId;
        _queue = new OutboundQueue(settings.QueueMaxBytes, settings.QueueMaxMessages);
        _sendLoop = sendLoop;
        _metrics = settings.Metrics;
        _time = time;
        _logger = logger;
    }

    /// <summary>When the send loop last flushed this writer (<see cref="TimeProvider.GetTimestamp"/>); 0 before the first time.</summary>
    public long LastFlushTimestamp { get; private set; }

    /// <summary>
    /// The smoothed time between this connection's pushes as its send loop sees them (timestamp units), long.MaxValue
    /// until the loop first flushes it after an earlier flush: the loop holds a flush back only where another push is due
    /// within the hold. Written by the send loop only; read by threads that schedule, for whom a stale value costs at
    /// most a wake-up.
    /// </summary>
    public long PushInterval { get; private set; } = long.MaxValue;

    /// <summary>
    /// Takes one sample of <see cref="PushInterval"/> before a send loop's flush at <paramref name="now"/>: the time since
    /// the last flush over the frames queued since then. A sample is capped at <paramref name="cap"/>, so that a quiet
    /// spell is forgotten after a few flushes once the connection is busy again.
    /// </summary>
    public void SamplePushInterval(long now, long cap)
    {
        var last = LastFlushTimestamp;
        var queued = _queue.Count;
        if (last == 0 || queued == 0)
        {
            return;
        }

        var sample = Math.Min((now - last) / queued, cap);
        var interval = PushInterval;

        // A quarter of each new sample: a change of rate is followed within a few flushes, one odd gap moves it little.
        PushInterval = interval == long.MaxValue ? sample : interval + ((sample - interval) / 4);
    }

    /// <summary>The outbound queue, for the node's gauges and for benchmarks that measure fan-out without a send loop.</summary>
    public OutboundQueue Queue => _queue;

    public bool IsClosing => Volatile.Read(ref _closeRequested) != 0;

    /// <summary>Why the server closed the connection, when it did.</summary>
    public Disconnect? ClosedWith => _disconnect;

    public long CloseRequestedAtTicks => Volatile.Read(ref _closeRequestedAtTicks);

    /// <summary>Completes when nothing more will be sent: the close went out, the socket is gone, or it was aborted.</summary>
    public Task Done
    {
        get
        {
            if (IsFinished)
            {
                return Task.CompletedTask;
            }

            var waiter = Volatile.Read(ref _finishedWaiter);
            if (waiter is null)
            {
                var made = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                waiter = Interlocked.CompareExchange(ref _finishedWaiter, made, null) ?? made;
            }

            // Pairs with Finish: either it sees the waiter, or this sees it finished.
            if (IsFinished)
            {
                waiter.TrySetResult();
            }

            return waiter.Task;
        }
    }

    private bool IsFinished => Volatile.Read(ref _finished) != 0;

    private void Finish()
    {
        Interlocked.Exchange(ref _finished, 1);
        Volatile.Read(ref _finishedWaiter)?.TrySetResult();
    }

    /// <summary>
    /// Queues a frame shared with other subscribers; a full queue closes the connection with 4500. A publication's push
    /// carries the time it was accepted (<paramref name="acceptedAtTicks"/>, UTC ticks), for the fan-out latency.
    /// </summary>
    public override void Send(ReadOnlyMemory<byte> frame, long acceptedAtTicks = 0)
    {
        if (_queue.TryEnqueue(frame, acceptedAtTicks))
        {
            Schedule();
        }
        else if (!IsClosing)
        {
            RequestClose(Disconnect.SlowConsumer, flushHere: false);
        }
    }

    /// <summary>Queues a control push (ping, unsubscribed) for the send loop. Control frames are few and small, so they count toward the bound but never trip it.</summary>
    public override void SendControl(ReadOnlyMemory<byte> frame)
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
    public override void EnqueueReply(ReadOnlyMemory<byte> frame) => _queue.TryEnqueueControl(frame);

    /// <summary>Flushes what is queued from this thread, unless a flush is already scheduled or running (which then takes it along).</summary>
    public override void FlushNow()
    {
        if (Interlocked.CompareExchange(ref _flushState, 1, 0) == 0)
        {
            Flush(_time.GetTimestamp());
        }
    }

    /// <summary>Puts the writer on its send loop's list, unless it is already there or being flushed.</summary>
    public void Schedule()
    {
        if (Interlocked.CompareExchange(ref _flushState, 1, 0) == 0)
        {
            _sendLoop.Schedule(this);
        }
    }

    /// <summary>
    /// Starts closing: the writer sends what is queued (or, for a slow consumer, drops it), then a <c>disconnect</c> push
    /// and the close frame, from this thread now when <paramref name="flushHere"/> (a reply's way), else on the send
    /// loop. False when the connection was already closing.
    /// </summary>
    public bool RequestClose(Disconnect disconnect, bool flushHere)
    {
        if (Interlocked.Exchange(ref _closeRequested, 1) != 0)
        {
            return false;
        }

        _disconnect = disconnect;
        if (disconnect == Disconnect.SlowConsumer)
        {
            _metrics?.SlowConsumer();
        }

        Volatile.Write(ref _closeRequestedAtTicks, _time.GetUtcNow().UtcTicks);
        Log.Closing(_logger, _connectionId, disconnect.Code, disconnect.Reason);
        _queue.Complete();
        if (flushHere)
        {
            FlushNow();
        }
        else
        {
            Schedule();
        }

        return true;
    }

    /// <summary>Ends the connection at once, without a close handshake.</summary>
    public void Abort()
    {
        Interlocked.Exchange(ref _closeRequested, 1);
        _queue.Complete();
        _transport.Abort();
        Finish();
    }

    /// <summary>
    /// Sends what is queued; never run twice at once. When the flush completes synchronously (the usual case) the caller
    /// goes straight on; otherwise the rest finishes on the flush's continuation. With a <paramref name="batch"/>, the
    /// send goes with the rest of the send loop's round where the transport can, and the flush ends when the batch is
    /// submitted (<see cref="OnFlushed"/>).
    /// </summary>
    public void Flush(long now, SendBatch? batch = null)
    {
        LastFlushTimestamp = now;
        if (IsFinished)
        {
            AfterFlush();
            return;
        }

        ValueTask<FlushResult> flush;
        try
        {
            _flushCloses = WriteDue();
            if (batch is not null && _transport.TryFlushInBatch(batch, this))
            {
                return;
            }

            flush = _transport.FlushAsync();
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
            Finish();
        }

        AfterFlush();
    }

    private void FlushFailed(Exception ex)
    {
        if (ex is OperationCanceledException or IOException or InvalidOperationException or ObjectDisposedException)
        {
            Log.SendEnded(_logger, _connectionId, ex.Message);
        }
        else
        {
            // Nothing may escape into the send loop, which serves every other connection on its core too.
            Log.SendFailed(_logger, _connectionId, ex);
        }

        Abort();
        AfterFlush();
    }

    private void AfterFlush()
    {
        // A full fence: a frame or close queued while this flush ran is seen below, or its own Schedule() succeeds.
        Interlocked.Exchange(ref _flushState, 0);
        if (IsFinished)
        {
            _queue.Clear();
        }
        else if (!_queue.IsEmpty || _transport.HasPendingControl || (IsClosing && !_closeSent))
        {
            Schedule();
        }
    }

    /// <summary>
    /// Writes everything due into the transport in one go (what the transport owes its peer, the queued pushes batched
    /// into messages, the closing frames), to be flushed once. True when the closing frames were among them.
    /// </summary>
    private bool WriteDue()
    {
        _transport.WritePendingControl();
        if (_disconnect == Disconnect.SlowConsumer)
        {
            // What a slow consumer had queued is dropped: its SDK recovers it from history.
            _queue.Clear();
        }
        else
        {
            WriteQueued();
        }

        var closing = IsClosing && !_closeSent;
        if (closing)
        {
            _closeSent = true;
            var disconnect = _disconnect ?? Disconnect.Normal;
            _transport.WriteClose(disconnect.Code, disconnect.Reason, FrameEncoder.DisconnectPush(disconnect));
        }

        return closing;
    }

    /// <summary>Writes the queued pushes as messages, each carrying as many pushes as fit a batch.</summary>
    private void WriteQueued()
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

            _transport.WriteMessage(batch[..count], payloadBytes);
            batch[..count].Clear();
        }
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

        [LoggerMessage(202, LogLevel.Debug, "Connection {ConnectionId} send ended: {Message}")]
        public static partial void SendEnded(ILogger logger, string connectionId, string message);

        [LoggerMessage(203, LogLevel.Error, "Sending to connection {ConnectionId} failed unexpectedly; it was aborted.")]
        public static partial void SendFailed(ILogger logger, string connectionId, Exception exception);
    }
}
