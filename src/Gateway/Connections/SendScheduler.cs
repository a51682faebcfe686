using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PushService.Gateway.Configuration;
using PushService.Gateway.Transport.Sockets;

namespace PushService.Gateway.Connections;

/// <summary>
/// Drives every connection's sends from a few loops, one per core (as Kestrel's I/O queues). A connection with queued
/// frames is put on its loop's list once; the loop wakes once for the whole list and flushes each connection in turn, the
/// send running inline down to the socket. A connection that flushed less than the coalescing window ago waits until its
/// window has passed, gathering more frames meanwhile; one that has been quiet is flushed at once. One wake-up thus
/// serves hundreds of connections, where a writer task per connection would cost a thread-pool wake-up (and a context
/// switch) per connection per batch. Replies to commands do not come through here (<see cref="ClientConnection.Reply"/>).
/// With <see cref="WebSocketEndpointOptions.BatchSends"/> a loop hands the sends of a round to the kernel in one system
/// call (<see cref="SendBatch"/>, io_uring on Linux); where the kernel has no io_uring to give it sends socket by socket.
/// </summary>
internal sealed partial class SendScheduler : IAsyncDisposable
{
    /// <summary>Sends per system call at most; a round with more submits every this many.</summary>
    private const uint BatchCapacity = 256;

    private readonly SendLoop[] _loops;
    private int _next;

    public SendScheduler(IOptions<PushServiceOptions> options, TimeProvider time, ILogger<SendScheduler> logger)
    {
        var batches = new SendBatch?[Environment.ProcessorCount];
        if (options.Value.WebSocket.BatchSends)
        {
            for (var i = 0; i < batches.Length; i++)
            {
                batches[i] = SendBatch.TryCreate(BatchCapacity, out var unavailable);
                if (batches[i] is null)
                {
                    // Said once: the loops without a batch send socket by socket.
                    Log.BatchSendsUnavailable(logger, unavailable ?? "");
                    break;
                }
            }
        }

        _loops = [.. batches.Select(batch => new SendLoop(options.Value.WebSocket.WriteCoalescing, time, batch, logger))];
    }

    /// <summary>The loop a new connection is flushed by, round robin.</summary>
    public SendLoop Assign() => _loops[(int)((uint)Interlocked.Increment(ref _next) % (uint)_loops.Length)];

    public async ValueTask DisposeAsync()
    {
        foreach (var loop in _loops)
        {
            await loop.DisposeAsync();
        }
    }

    /// <summary>One sending loop and its list of connections with frames to send.</summary>
    internal sealed class SendLoop : IAsyncDisposable
    {
        private readonly Channel<ClientConnection> _ready = Channel.CreateUnbounded<ClientConnection>(
            new UnboundedChannelOptions { SingleReader = true, SingleWriter = false, AllowSynchronousContinuations = false });

        private readonly TimeSpan _coalescing;
        private readonly TimeProvider _time;
        private readonly SendBatch? _batch;
        private readonly ILogger? _logger;
        private readonly Task _loop;

        /// <summary>A loop that flushes connections <paramref name="coalescing"/> apart at least, sending each round's
        /// sends together through <paramref name="batch"/> when there is one (the loop then owns it).</summary>
        public SendLoop(TimeSpan coalescing, TimeProvider time, SendBatch? batch = null, ILogger? logger = null)
        {
            _coalescing = coalescing;
            _time = time;
            _batch = batch;
            _logger = logger;
            _loop = Task.Run(RunAsync);
        }

        /// <summary>Puts a connection on the list; the connection guarantees it is on it at most once at a time.</summary>
        public void Schedule(ClientConnection connection) => _ready.Writer.TryWrite(connection);

        private async Task RunAsync()
        {
            var reader = _ready.Reader;

            // Connections that flushed less than a window ago wait here, by the time their window ends.
            var deferred = new PriorityQueue<ClientConnection, long>();
            Task<bool>? waiting = null;
            var batchFailed = false;
            // In timestamp units, computed in floating point: ticks times frequency overflows a long for long windows.
            var window = (long)(_coalescing.TotalSeconds * _time.TimestampFrequency);
            while (true)
            {
                // Everything due within half a window goes now too: one wake-up then serves many connections.
                var now = _time.GetTimestamp();
                while (deferred.TryPeek(out var due, out var dueAt) && dueAt <= now + (window / 2))
                {
                    deferred.Dequeue();
                    due.Flush(now, _batch);
                }

                while (reader.TryRead(out var connection))
                {
                    var readyAt = connection.LastFlushTimestamp + window;
                    if (window == 0 || connection.LastFlushTimestamp == 0 || readyAt <= now)
                    {
                        connection.Flush(now, _batch);
                    }
                    else
                    {
                        deferred.Enqueue(connection, readyAt);
                    }
                }

                // The round's sends go out together; flushes they end may put their connections back on the list.
                if (_batch is not null && !batchFailed)
                {
                    _batch.Submit();
                    if (_batch.FailedWith != 0)
                    {
                        batchFailed = true;
                        if (_logger is not null)
                        {
                            Log.BatchSendsFailed(_logger, _batch.FailedWith);
                        }
                    }
                }

                waiting ??= reader.WaitToReadAsync().AsTask();
                if (deferred.TryPeek(out _, out var nextAt))
                {
                    var delay = TimeSpan.FromSeconds((nextAt - _time.GetTimestamp()) / (double)_time.TimestampFrequency);
                    if (delay > TimeSpan.Zero)
                    {
                        await Task.WhenAny(waiting, Task.Delay(delay, _time));
                    }
                }
                else
                {
                    await waiting;
                }

                if (waiting.IsCompleted)
                {
                    if (!waiting.Result && deferred.Count == 0)
                    {
                        return;
                    }

                    waiting = null;
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            _ready.Writer.TryComplete();
            await _loop;
            _batch?.Dispose();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(230, LogLevel.Information, "Batched sends are off: {Reason}. Each socket is sent to with a system call of its own.")]
        public static partial void BatchSendsUnavailable(ILogger logger, string reason);

        [LoggerMessage(231, LogLevel.Warning, "Batched sends failed (io_uring_enter, errno {Errno}): this send loop now sends socket by socket. The connections whose sends were in flight were closed; their clients recover from history.")]
        public static partial void BatchSendsFailed(ILogger logger, int errno);
    }
}
