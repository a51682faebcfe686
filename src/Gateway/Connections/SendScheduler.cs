using System.Threading.Channels;
using Microsoft.Extensions.Options;
using PushService.Gateway.Configuration;

namespace PushService.Gateway.Connections;

/// <summary>
/// Drives every connection's sends from a few loops, one per core (as Kestrel's I/O queues). A connection with queued
/// frames is put on its loop's list once; the loop wakes once for the whole list, optionally lets the coalescing window
/// pass so busy connections gather more frames, and flushes each connection in turn, the send running inline down to the
/// socket. One wake-up thus serves hundreds of connections, where a writer task per connection would cost a thread-pool
/// wake-up (and a context switch) per connection per batch.
/// </summary>
internal sealed class SendScheduler : IAsyncDisposable
{
    private readonly SendLoop[] _loops;
    private int _next;

    public SendScheduler(IOptions<PushServiceOptions> options, TimeProvider time)
    {
        _loops = [.. Enumerable.Range(0, Environment.ProcessorCount).Select(_ => new SendLoop(options.Value.WebSocket.WriteCoalescing, time))];
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
        private readonly Task _loop;

        public SendLoop(TimeSpan coalescing, TimeProvider time)
        {
            _coalescing = coalescing;
            _time = time;
            _loop = Task.Run(RunAsync);
        }

        /// <summary>Puts a connection on the list; the connection guarantees it is on it at most once at a time.</summary>
        public void Schedule(ClientConnection connection) => _ready.Writer.TryWrite(connection);

        private async Task RunAsync()
        {
            var reader = _ready.Reader;
            var lastCycle = 0L;
            while (await reader.WaitToReadAsync())
            {
                // The loop just flushed: let the window pass so the connections it will flush carry several frames each.
                if (lastCycle != 0 && _coalescing > TimeSpan.Zero)
                {
                    var since = _time.GetElapsedTime(lastCycle);
                    if (since < _coalescing)
                    {
                        await Task.Delay(_coalescing - since, _time);
                    }
                }

                lastCycle = _time.GetTimestamp();
                while (reader.TryRead(out var connection))
                {
                    connection.Flush();
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            _ready.Writer.TryComplete();
            await _loop;
        }
    }
}
