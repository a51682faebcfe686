using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PushService.Gateway.Configuration;
using PushService.Gateway.Telemetry;
using PushService.Gateway.Transport.Sockets;

namespace PushService.Gateway.Connections;

/// <summary>
/// Drives every connection's sends from a few loops, one per core (as Kestrel's I/O queues). A connection with queued
/// frames is put on its loop's list once; the loop wakes once for the whole list and flushes each connection in turn,
/// the send running inline down to the socket. Coalescing adapts to each connection: one that flushed less than the
/// coalescing window ago, and whose pushes come closer together than the rest of that window, waits for the window to
/// end, gathering more frames meanwhile; any other (quiet, or whose next push is not due before the window ends anyway)
/// is flushed at once, since holding it would add latency and gather nothing. One wake-up thus serves hundreds of
/// connections, where a writer task per connection would cost a thread-pool wake-up (and a context switch) per
/// connection per batch. Replies to commands do not come through here (<see cref="ConnectionWriter.Reply"/>).
/// With <see cref="WebSocketEndpointOptions.BatchSends"/> a loop hands the sends of a round to the kernel in one system
/// call (<see cref="SendBatch"/>, io_uring on Linux); where the kernel has no io_uring to give it sends socket by socket.
/// </summary>
internal sealed partial class SendScheduler : IAsyncDisposable
{
    /// <summary>Sends per system call at most; a round with more submits every this many.</summary>
    private const uint BatchCapacity = 256;

    /// <summary>The runtime's switch that completes socket operations on its socket event thread, which the figures assume.</summary>
    private const string InlineCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    private readonly SendLoop[] _loops;
    private int _next;

    public SendScheduler(IOptions<PushServiceOptions> options, TimeProvider time, IMeterFactory meters, ILogger<SendScheduler> logger)
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
        if (Environment.GetEnvironmentVariable(InlineCompletionsVariable) != "1")
        {
            // The runtime's switch is the process's environment's, not the gateway's to set (the image and chart set it).
            Log.CompletionsOnThreadPool(logger, InlineCompletionsVariable);
        }

        // Where the kernel refuses io_uring (container runtimes' default seccomp profiles do) the log says so once at
        // start-up; this says so for as long as it lasts, and shows a loop that gave up batching after a failed submit.
        meters.Create(PushTelemetry.Name).CreateObservableGauge("pushservice.send.batching_loops", () => BatchingLoops, "{loop}",
            "Send loops handing their sends to the kernel in one io_uring call a round; 0 means socket by socket.");
    }

    /// <summary>How many send loops batch their sends (see <see cref="SendLoop.Batches"/>).</summary>
    public int BatchingLoops => _loops.Count(loop => loop.Batches);

    /// <summary>How many send loops there are, batching or not.</summary>
    public int Loops => _loops.Length;

    /// <summary>The loop a new connection is flushed by, round robin.</summary>
    public SendLoop Assign() => _loops[(int)((uint)Interlocked.Increment(ref _next) % (uint)_loops.Length)];

    public async ValueTask DisposeAsync()
    {
        foreach (var loop in _loops)
        {
            await loop.DisposeAsync();
        }
    }

    /// <summary>
    /// One sending loop and its list of connections with frames to send. The loop is a thread of its own that sleeps in
    /// a kernel wait with its next window's end as the timeout: a wake-up through the thread pool (an awaited channel, a
    /// timer) cost a node under B's load about four futex calls and two woken workers each (the worker woken for the
    /// continuation asks for another one, which finds nothing), and a timer another hop through the timer thread.
    /// </summary>
    internal sealed class SendLoop : IAsyncDisposable
    {
        private readonly ConcurrentQueue<ConnectionWriter> _ready = new();

        private readonly LoopSignal _signal = new();
        private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TimeSpan _coalescing;
        private readonly TimeProvider _time;
        private readonly SendBatch? _batch;
        private readonly ILogger? _logger;
        private readonly long _window;
        private volatile bool _stopping;
        private volatile bool _batchFailed;
        private long _rounds;

        // The timestamp the loop sleeps until, long.MaxValue while it is awake or sleeps without a deadline.
        private long _wakeAt = long.MaxValue;

        /// <summary>A loop that flushes connections <paramref name="coalescing"/> apart at least, sending each round's
        /// sends together through <paramref name="batch"/> when there is one (the loop then owns it).</summary>
        public SendLoop(TimeSpan coalescing, TimeProvider time, SendBatch? batch = null, ILogger? logger = null)
        {
            _coalescing = coalescing;
            _time = time;
            _batch = batch;
            _logger = logger;

            // In timestamp units, computed in floating point: ticks times frequency overflows a long for long windows.
            _window = (long)(_coalescing.TotalSeconds * _time.TimestampFrequency);
            new Thread(Run) { IsBackground = true, Name = "Push send loop" }.UnsafeStart();
        }

        /// <summary>True while the loop hands its rounds' sends to the kernel in one io_uring call each.</summary>
        public bool Batches => _batch is not null && !_batchFailed;

        /// <summary>Puts a connection's writer on the list; the writer guarantees it is on it at most once at a time.</summary>
        public void Schedule(ConnectionWriter connection)
        {
            _ready.Enqueue(connection);

            // A connection the loop would hold (see Holds) waits for its window anyway: when the loop sleeps until a
            // time before that window ends, it reads the list then, and waking it now would only have it sleep again.
            // Under B's and C's load that was a wake-up per connection per window. The fence pairs with the loop's
            // exchange before it reads the list: either the loop finds this connection or this sees it awake.
            var last = connection.LastFlushTimestamp;
            if (_window != 0 && last != 0)
            {
                Interlocked.MemoryBarrier();
                if (Holds(last, connection.PushInterval, _time.GetTimestamp(), _window, out var readyAt)
                    && readyAt >= Volatile.Read(ref _wakeAt))
                {
                    return;
                }
            }

            // Only a loop asleep on the signal is woken; setting a set signal is one interlocked operation.
            _signal.Set();
        }

        /// <summary>The rounds the loop has begun: a round per wake-up.</summary>
        internal long Rounds => Volatile.Read(ref _rounds);

        /// <summary>The timestamp the loop sleeps until; long.MaxValue while it is awake or has no deadline.</summary>
        internal long SleepsUntil => Volatile.Read(ref _wakeAt);

        private void Run()
        {
            try
            {
                Loop();
                _stopped.TrySetResult();
            }
            catch (Exception ex)
            {
                // Flushes and submissions handle their own failures, so this is a bug. A node whose sends stopped would
                // keep its clients connected and silent; ending the process sends them to other nodes, where they
                // recover from history.
                if (_logger is not null)
                {
                    Log.SendLoopFailed(_logger, ex);
                }

                throw;
            }
        }

        private void Loop()
        {
            // Connections that flushed less than a window ago wait here, by the time their window ends.
            var deferred = new PriorityQueue<ConnectionWriter, long>();
            while (true)
            {
                Interlocked.Increment(ref _rounds);

                // Awake from here on: every connection scheduled is read below or wakes the loop again.
                Interlocked.Exchange(ref _wakeAt, long.MaxValue);

                // Reset before the list is read: whatever is scheduled from here on sets the signal again.
                _signal.Reset();

                // Everything due within a round's reach goes now too: one wake-up then serves many connections.
                var now = _time.GetTimestamp();
                while (deferred.TryPeek(out var due, out var dueAt) && dueAt <= now + Reach(_window))
                {
                    deferred.Dequeue();
                    Flush(due, now);
                }

                while (_ready.TryDequeue(out var connection))
                {
                    if (Holds(connection.LastFlushTimestamp, connection.PushInterval, now, _window, out var readyAt))
                    {
                        deferred.Enqueue(connection, readyAt);
                    }
                    else
                    {
                        Flush(connection, now);
                    }
                }

                // The round's sends go out together; flushes they end may put their connections back on the list.
                if (_batch is not null && !_batchFailed)
                {
                    _batch.Submit();
                    if (_batch.FailedWith != 0)
                    {
                        _batchFailed = true;
                        if (_logger is not null)
                        {
                            Log.BatchSendsFailed(_logger, _batch.FailedWith);
                        }
                    }
                }

                if (deferred.TryPeek(out _, out var nextAt))
                {
                    var delay = nextAt - _time.GetTimestamp();
                    if (delay > 0)
                    {
                        Volatile.Write(ref _wakeAt, nextAt);
                        _signal.Wait(_time.GetElapsedTime(0, delay));
                    }
                }
                else if (_stopping && _ready.IsEmpty)
                {
                    return;
                }
                else
                {
                    _signal.Wait(Timeout.InfiniteTimeSpan);
                }
            }
        }

        /// <summary>
        /// Whether a connection flushed at <paramref name="lastFlush"/> (0: never), read from the list at
        /// <paramref name="now"/>, waits until <paramref name="readyAt"/>, its window's end: only when its window has not
        /// ended, does not end within a round's reach either (a connection that waited for this wake-up instead of
        /// waking the loop, see <see cref="Schedule"/>, goes with it), and its next push is due before then, going by
        /// <paramref name="pushInterval"/>. A connection whose pushes come further apart than that would wait for nothing.
        /// </summary>
        internal static bool Holds(long lastFlush, long pushInterval, long now, long window, out long readyAt)
        {
            readyAt = lastFlush + window;
            if (window == 0 || lastFlush == 0)
            {
                return false;
            }

            var left = readyAt - now;
            return left > Reach(window) && pushInterval < left;
        }

        /// <summary>How close to its window's end a held connection is taken along with a round: a quarter window.</summary>
        private static long Reach(long window) => window / 4;

        private void Flush(ConnectionWriter connection, long now)
        {
            if (_window != 0)
            {
                connection.SamplePushInterval(now, cap: 2 * _window);
            }

            connection.Flush(now, _batch);
        }

        public async ValueTask DisposeAsync()
        {
            _stopping = true;
            _signal.Set();
            await _stopped.Task;
            _batch?.Dispose();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(230, LogLevel.Information, "Batched sends are off: {Reason}. Each socket is sent to with a system call of its own.")]
        public static partial void BatchSendsUnavailable(ILogger logger, string reason);

        [LoggerMessage(231, LogLevel.Warning, "Batched sends failed (io_uring_enter, errno {Errno}): this send loop now sends socket by socket. The connections whose sends were in flight were closed; their clients recover from history.")]
        public static partial void BatchSendsFailed(ILogger logger, int errno);

        [LoggerMessage(233, LogLevel.Information, "Socket completions run on the thread pool: {Variable} is not 1 in this process's environment (the container image and the Helm chart set it; see docs/deploy.md for bare hosts).")]
        public static partial void CompletionsOnThreadPool(ILogger logger, string variable);

        [LoggerMessage(232, LogLevel.Critical, "A send loop failed; the node stops so that its clients reconnect to others and recover.")]
        public static partial void SendLoopFailed(ILogger logger, Exception exception);
    }
}
