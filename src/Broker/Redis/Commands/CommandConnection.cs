using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using PushService.Broker.Redis.Resp;
using StackExchange.Redis;

namespace PushService.Broker.Redis.Commands;

/// <summary>Reads a command's reply on the reading thread, from a reply that is valid only during the call.</summary>
internal delegate T ReplyReader<T>(RespFrame frame, ReadOnlySpan<byte> reply);

/// <summary>
/// The broker's own command connection to one Redis server, for the publish script. Through StackExchange.Redis a reply
/// passes its socket reader, its pipe's reader and a completion on the thread pool before the caller goes on; here the
/// reply is read where the socket's data arrives (the socket event thread, with the gateway's inline completions) and
/// the caller's continuation runs right there: the rest of a REST publish, down to writing its response, takes no
/// further hand-off between threads. Callers must therefore never block on a reply.
/// </summary>
/// <remarks>
/// Commands are pipelined: whoever finds no send under way sends what is buffered, and goes on sending what others
/// buffered meanwhile, so concurrent callers share system calls without a writer thread. Replies come in the order the
/// commands were sent and complete a FIFO of waiting callers. A command not answered within the operation timeout fails
/// the connection and everything waiting on it (each with <see cref="RedisTimeoutException"/>); a broken connection
/// fails its waiting callers with <see cref="RedisConnectionException"/> and reconnects with a growing delay. Errors
/// Redis answers become <see cref="RedisServerException"/>: the exception types the broker's circuit breaker and its
/// mapping to "unavailable" already know from StackExchange.Redis.
/// </remarks>
internal sealed partial class CommandConnection : IAsyncDisposable
{
    private readonly RespServer _server;
    private readonly IReadOnlyList<string> _scripts;
    private readonly TimeSpan _timeout;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Timer _timeouts;
    private Link? _link;
    private volatile bool _clusterNode;
    private int _connects;
    private long _sent;

    /// <summary>Creates the connection; <see cref="StartAsync"/> makes it. <paramref name="scripts"/> are Lua scripts loaded
    /// on every connect, so commands may run them by SHA from the first one.</summary>
    public CommandConnection(RespServer server, IReadOnlyList<string> scripts, TimeSpan timeout, ILogger logger)
    {
        _server = server;
        _scripts = scripts;
        _timeout = timeout;
        _logger = logger;

        // One check of the oldest waiting command a few times per timeout, rather than a timer per command.
        var period = TimeSpan.FromTicks(Math.Clamp(timeout.Ticks / 4, TimeSpan.TicksPerMillisecond * 10, TimeSpan.TicksPerMillisecond * 250));
        _timeouts = new Timer(static state => ((CommandConnection)state!).CheckTimeouts(), this, period, period);
    }

    /// <summary>True while the connection is made and ready for commands.</summary>
    public bool IsConnected => Volatile.Read(ref _link) is { Up: true, Broken: false };

    /// <summary>How many times the connection was made, reconnections included.</summary>
    public int Connects => Volatile.Read(ref _connects);

    /// <summary>How many commands were sent (handshakes not counted).</summary>
    public long Sent => Interlocked.Read(ref _sent);

    /// <summary>Connects; when Redis is not there, keeps trying in the background and returns. A Redis Cluster node is
    /// not connected to (keys of other slots would be answered <c>MOVED</c>): callers go on through StackExchange.Redis.</summary>
    public async Task StartAsync()
    {
        if (!await TryConnectAsync() && !_clusterNode)
        {
            _ = ReconnectAsync();
        }
    }

    /// <summary>
    /// Sends the command <paramref name="write"/> writes and returns what <paramref name="read"/> makes of its reply.
    /// <paramref name="write"/> runs under the connection's write lock and must not throw: a command written in part
    /// would corrupt the stream.
    /// </summary>
    public Task<T> SendAsync<TState, T>(TState state, Action<RespWriter, TState> write, ReplyReader<T> read)
    {
        if (Volatile.Read(ref _link) is not { Up: true } link)
        {
            return Task.FromException<T>(NotConnected("The Redis command connection is down."));
        }

        var waiter = new Waiter<T>(read);
        bool sends;
        lock (link.Lock)
        {
            if (link.Broken)
            {
                return Task.FromException<T>(NotConnected("The Redis command connection is down."));
            }

            write(new RespWriter(link.Outgoing), state);
            waiter.EnqueuedAt = Environment.TickCount64;

            // Queued under the same lock as its bytes: the replies' order is the commands' order.
            link.Waiting.Enqueue(waiter);
            _sent++;
            sends = !link.Sending;
            link.Sending = true;
        }

        if (sends)
        {
            _ = SendBufferedAsync(link);
        }

        return waiter.Task;
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync();
        await _timeouts.DisposeAsync();
        if (Volatile.Read(ref _link) is { } link)
        {
            Break(link, NotConnected("The Redis command connection was closed."));
        }
    }

    /// <summary>Sends what is buffered until nothing is; the one sender of its link at a time.</summary>
    private async Task SendBufferedAsync(Link link)
    {
        while (true)
        {
            ArrayBufferWriter<byte> batch;
            lock (link.Lock)
            {
                if (link.Broken || link.Outgoing.WrittenCount == 0)
                {
                    link.Sending = false;
                    return;
                }

                // Callers go on writing into the other buffer while this one is sent.
                (link.Outgoing, link.InFlight) = (link.InFlight, link.Outgoing);
                batch = link.InFlight;
            }

            try
            {
                var bytes = batch.WrittenMemory;
                while (!bytes.IsEmpty)
                {
                    bytes = bytes[await link.Socket.SendAsync(bytes, SocketFlags.None)..];
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                Break(link, NotConnected($"Sending to Redis failed: {ex.Message}"));
                return;
            }

            // A large publication grew it: do not hold on to that much for every later command.
            if (batch.Capacity > 1024 * 1024)
            {
                lock (link.Lock)
                {
                    link.InFlight = new ArrayBufferWriter<byte>(4096);
                }
            }
            else
            {
                batch.ResetWrittenCount();
            }
        }
    }

    /// <summary>Makes the connection: false when it could not be made (the caller tries again later).</summary>
    private async Task<bool> TryConnectAsync()
    {
        if (await RespSocket.TryConnectAsync(_server, _timeout, reason => Log.ConnectFailed(_logger, _server.Name, reason),
            _stopping.Token) is not { } socket)
        {
            return false;
        }

        // The session's opening commands go first on the new link, answered in order like any other.
        var link = new Link(socket);
        var hello = new List<Task<bool>>();
        var bytes = new List<byte>();
        foreach (var (_, command) in RespSocket.Hello(_server, selectDatabase: true))
        {
            Open(command, static (_, _) => true);
        }

        Open(RespWriter.Command("INFO", "cluster"), (frame, reply) =>
        {
            _clusterNode = frame.Kind == RespKind.Bulk && frame.Part(reply, 0).IndexOf("cluster_enabled:1"u8) >= 0;
            return true;
        });
        foreach (var script in _scripts)
        {
            Open(RespWriter.Command("SCRIPT", "LOAD", script),
                static (frame, _) => frame.Kind == RespKind.Bulk ? true : throw new FormatException("SCRIPT LOAD did not answer a SHA."));
        }

        void Open(byte[] command, ReplyReader<bool> read)
        {
            var waiter = new Waiter<bool>(read) { EnqueuedAt = Environment.TickCount64 };
            link.Waiting.Enqueue(waiter);
            hello.Add(waiter.Task);
            bytes.AddRange(command);
        }

        Volatile.Write(ref _link, link);
        _ = ReadAsync(link);
        try
        {
            await socket.SendAsync(bytes.ToArray(), SocketFlags.None);
            await Task.WhenAll(hello);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or RedisException)
        {
            if (!_stopping.IsCancellationRequested)
            {
                Log.ConnectFailed(_logger, _server.Name, ex.Message);
            }

            Break(link, NotConnected(ex.Message));
            return false;
        }

        if (_clusterNode)
        {
            Log.ClusterNode(_logger, _server.Name);
            Break(link, NotConnected("Redis is a cluster node."));
            return false;
        }

        lock (link.Lock)
        {
            link.Up = !link.Broken && !_stopping.IsCancellationRequested;
        }

        if (!link.Up)
        {
            // Broken meanwhile, or closed: the connection disposed of while it was being made must not stay open.
            Break(link, NotConnected("The Redis command connection was closed."));
            return false;
        }

        Interlocked.Increment(ref _connects);
        Log.Connected(_logger, _server.Name);
        _server.SignalReached();
        return true;
    }

    private Task<bool> ReconnectAsync() => RespSocket.RetryAsync(_server, TryConnectAsync, () => _clusterNode, _stopping.Token);

    /// <summary>Reads replies until the link breaks. Each completes the oldest waiting command, whose caller goes on here.</summary>
    private async Task ReadAsync(Link link)
    {
        var buffer = new byte[16 * 1024];
        var end = 0;
        Exception failure;
        try
        {
            while (true)
            {
                if (end == buffer.Length)
                {
                    Array.Resize(ref buffer, buffer.Length * 2);
                }

                var read = await link.Socket.ReceiveAsync(buffer.AsMemory(end), SocketFlags.None);
                if (read == 0)
                {
                    failure = NotConnected("Redis closed the command connection.");
                    break;
                }

                end += read;
                var start = 0;
                while (RespFrame.TryRead(buffer.AsSpan(start, end - start), out var frame, out var consumed))
                {
                    if (!link.Waiting.TryDequeue(out var waiter))
                    {
                        throw new FormatException("Redis sent a reply to no command.");
                    }

                    waiter.Complete(frame, buffer.AsSpan(start, consumed));
                    start += consumed;
                }

                Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                end -= start;
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or FormatException)
        {
            failure = NotConnected($"The Redis command connection failed: {ex.Message}");
        }

        Break(link, failure);
    }

    /// <summary>Fails a link that stopped answering; its reader then ends and a new link is made.</summary>
    private void CheckTimeouts()
    {
        if (Volatile.Read(ref _link) is { } link && link.Waiting.TryPeek(out var oldest)
            && Environment.TickCount64 - oldest.EnqueuedAt > _timeout.TotalMilliseconds)
        {
            Break(link, new RedisTimeoutException($"Redis did not answer within {_timeout.TotalMilliseconds} ms.", CommandStatus.Sent));
        }
    }

    /// <summary>Ends <paramref name="link"/> once: fails what waits on it and, if it had been up, reconnects.</summary>
    private void Break(Link link, Exception reason)
    {
        bool wasUp;
        lock (link.Lock)
        {
            if (link.Broken)
            {
                return;
            }

            link.Broken = true;
            wasUp = link.Up;
        }

        Interlocked.CompareExchange(ref _link, null, link);
        link.Socket.Dispose();
        while (link.Waiting.TryDequeue(out var waiter))
        {
            waiter.Fail(reason);
        }

        if (wasUp && !_stopping.IsCancellationRequested)
        {
            Log.Disconnected(_logger, _server.Name, reason.Message);
            _ = ReconnectAsync();
        }
    }

    private static RedisConnectionException NotConnected(string message) => new(ConnectionFailureType.SocketFailure, message);

    /// <summary>One connection's socket and what is buffered for it and waits on it; a reconnection makes a new one.</summary>
    private sealed class Link(Socket socket)
    {
        public Socket Socket { get; } = socket;

        /// <summary>Guards the buffers, <see cref="Sending"/> and the order of <see cref="Waiting"/>.</summary>
        public Lock Lock { get; } = new();

        /// <summary>Commands written and not yet sent.</summary>
        public ArrayBufferWriter<byte> Outgoing { get; set; } = new(4096);

        /// <summary>The commands being sent; the sender's alone.</summary>
        public ArrayBufferWriter<byte> InFlight { get; set; } = new(4096);

        /// <summary>Whether a caller is sending; whoever sets it sends until nothing is buffered.</summary>
        public bool Sending { get; set; }

        public ConcurrentQueue<Waiter> Waiting { get; } = new();

        public volatile bool Up;

        public volatile bool Broken;
    }

    /// <summary>A command waiting for its reply.</summary>
    private abstract class Waiter
    {
        public long EnqueuedAt { get; set; }

        public abstract void Complete(RespFrame frame, ReadOnlySpan<byte> reply);

        public abstract void Fail(Exception reason);
    }

    /// <summary>
    /// Completes its caller's task on the thread that read the reply: the caller's continuation runs there (no
    /// <see cref="TaskCreationOptions.RunContinuationsAsynchronously"/>), which is the hand-off this connection saves.
    /// </summary>
    private sealed class Waiter<T>(ReplyReader<T> read) : Waiter
    {
        private readonly TaskCompletionSource<T> _done = new();

        public Task<T> Task => _done.Task;

        public override void Complete(RespFrame frame, ReadOnlySpan<byte> reply)
        {
            if (frame.Kind == RespKind.Error)
            {
                _done.TrySetException(new RedisServerException(Encoding.UTF8.GetString(frame.Part(reply, 0))));
                return;
            }

            T value;
            try
            {
                value = read(frame, reply);
            }
            catch (Exception ex) when (ex is FormatException or InvalidOperationException or ArgumentOutOfRangeException)
            {
                _done.TrySetException(new RedisServerException($"Unexpected reply from Redis: {ex.Message}"));
                return;
            }

            _done.TrySetResult(value);
        }

        public override void Fail(Exception reason) => _done.TrySetException(reason);
    }

    private static partial class Log
    {
        [LoggerMessage(1120, LogLevel.Information, "Redis command connection to {EndPoint} up.")]
        public static partial void Connected(ILogger logger, string endPoint);

        [LoggerMessage(1121, LogLevel.Warning, "Redis command connection to {EndPoint} failed: {Reason}. Reconnecting.")]
        public static partial void Disconnected(ILogger logger, string endPoint, string reason);

        [LoggerMessage(1122, LogLevel.Warning, "Could not connect the Redis command connection to {EndPoint}: {Reason}.")]
        public static partial void ConnectFailed(ILogger logger, string endPoint, string reason);

        [LoggerMessage(1123, LogLevel.Information, "Redis at {EndPoint} is a cluster node: publications go through StackExchange.Redis.")]
        public static partial void ClusterNode(ILogger logger, string endPoint);
    }
}
