using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using PushService.Broker.Redis.Resp;

namespace PushService.Broker.Redis.Subscriptions;

/// <summary>
/// The broker's own pub/sub connection to one Redis server, read where the socket's data arrives. StackExchange.Redis
/// hands every pub/sub message from its socket reader to its pipe's reader and on to a channel queue's reader, each a
/// thread-pool wake-up; a node receiving C's 2,000 publications a second spent 57–68 µs of CPU per message that way,
/// where a bare socket read on the socket event thread costs 10–15 µs (docs/benchmarks-history.md, "What limits CPU per
/// delivery"). Messages go to the broker's callback on the reading thread, in the order Redis sent them.
/// </summary>
/// <remarks>
/// RESP2 in subscribed mode: <c>AUTH</c> and <c>CLIENT SETNAME</c> when connecting, then <c>SUBSCRIBE</c> and
/// <c>UNSUBSCRIBE</c>, each confirmed in order (a FIFO of waiting callers). When the connection fails the waiting
/// callers fail with <see cref="BrokerUnavailableException"/>, and it reconnects with a growing delay, subscribes again
/// to every channel the broker still wants and then tells the broker, which reads back what it missed. TCP keep-alive
/// (<see cref="RespSocket"/>) notices a server that went away without closing.
/// </remarks>
internal sealed partial class SubscriptionConnection : IAsyncDisposable
{
    private readonly RespServer _server;
    private readonly TimeSpan _timeout;
    private readonly TimeSpan _retryAfter;
    private readonly MessageHandler _onMessage;
    private readonly Func<IReadOnlyCollection<string>> _wantedChannels;
    private readonly Action _onRestored;
    private readonly ILogger _logger;
    private readonly Lock _writeLock = new();
    private readonly ConcurrentQueue<Pending> _pending = new();
    private readonly CancellationTokenSource _stopping = new();
    private Socket? _socket;
    private volatile bool _connected;
    private int _connects;

    /// <summary>Called on the reading thread for each message; the payload is valid only during the call.</summary>
    public delegate void MessageHandler(string channel, ReadOnlyMemory<byte> payload);

    public SubscriptionConnection(RespServer server, TimeSpan timeout, TimeSpan retryAfter, MessageHandler onMessage,
        Func<IReadOnlyCollection<string>> wantedChannels, Action onRestored, ILogger logger)
    {
        _server = server;
        _timeout = timeout;
        _retryAfter = retryAfter;
        _onMessage = onMessage;
        _wantedChannels = wantedChannels;
        _onRestored = onRestored;
        _logger = logger;
    }

    public bool IsConnected => _connected;

    /// <summary>How many times the connection was made, reconnections included.</summary>
    public int Connects => Volatile.Read(ref _connects);

    /// <summary>Connects; when Redis is not there, keeps trying in the background and returns.</summary>
    public async Task StartAsync()
    {
        if (!await TryConnectAsync())
        {
            _ = ReconnectAsync();
        }
    }

    /// <summary>Subscribes to <paramref name="channel"/> and returns once Redis confirmed it.</summary>
    public Task SubscribeAsync(string channel) => SendAsync("SUBSCRIBE", channel);

    /// <summary>Unsubscribes from <paramref name="channel"/>; a connection that is down has no subscription to drop.</summary>
    public async Task UnsubscribeAsync(string channel)
    {
        try
        {
            await SendAsync("UNSUBSCRIBE", channel);
        }
        catch (BrokerUnavailableException ex)
        {
            Log.UnsubscribeFailed(_logger, channel, ex.Message);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync();
        _connected = false;
        _socket?.Dispose();
        FailPending("The subscription connection was closed.");
    }

    private async Task SendAsync(string command, string channel)
    {
        var pending = new Pending($"{command} {channel}");
        lock (_writeLock)
        {
            if (!_connected || _socket is not { } socket)
            {
                throw Unavailable("The Redis subscription connection is down.");
            }

            // Queued before it is sent: the confirmation cannot come before its waiter.
            _pending.Enqueue(pending);
            try
            {
                socket.Send(RespWriter.Command(command, channel));
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // The reader notices the broken connection too, and fails whatever waits.
                pending.Done.TrySetException(Unavailable($"Sending {command} failed: {ex.Message}"));
            }
        }

        try
        {
            await pending.Done.Task.WaitAsync(_timeout);
        }
        catch (TimeoutException)
        {
            throw Unavailable($"Redis did not confirm {pending.What} within {_timeout.TotalMilliseconds} ms.");
        }
    }

    /// <summary>Makes the connection. False when it could not be made (the caller tries again later); true when it is up,
    /// or when it broke right after and its reader is already reconnecting.</summary>
    private async Task<bool> TryConnectAsync()
    {
        if (await RespSocket.TryConnectAsync(_server, _timeout, reason => Log.ConnectFailed(_logger, _server.Name, reason),
            _stopping.Token) is not { } socket)
        {
            return false;
        }

        try
        {
            // The handshake's replies come first, in order; the channels wanted now are subscribed in the same write.
            var channels = _wantedChannels();
            var handshake = new List<Pending>();
            var bytes = new List<byte>();

            // Pub/sub channels belong to no database: no SELECT.
            foreach (var (what, command) in RespSocket.Hello(_server, selectDatabase: false))
            {
                bytes.AddRange(command);
                handshake.Add(new Pending(what));
            }

            foreach (var channel in channels)
            {
                bytes.AddRange(RespWriter.Command("SUBSCRIBE", channel));
                handshake.Add(new Pending($"SUBSCRIBE {channel}"));
            }

            lock (_writeLock)
            {
                _pending.Clear();
                foreach (var pending in handshake)
                {
                    _pending.Enqueue(pending);
                }

                _socket = socket;
                socket.Send(bytes.ToArray());
            }

            _ = ReadAsync(socket);
            await Task.WhenAll(handshake.Select(p => p.Done.Task)).WaitAsync(_timeout, _stopping.Token);
            lock (_writeLock)
            {
                // Up only if its reader has not already found it broken; if it has, the reader began reconnecting, and
                // that attempt is the one to follow: this caller must not start another.
                if (_socket != socket)
                {
                    return true;
                }

                _connected = true;
            }

            Interlocked.Increment(ref _connects);
            Log.Connected(_logger, _server.Name, channels.Count);
            _server.SignalReached();
            return true;
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or TimeoutException or BrokerUnavailableException or ObjectDisposedException)
        {
            if (!_stopping.IsCancellationRequested)
            {
                Log.ConnectFailed(_logger, _server.Name, ex.Message);
            }

            lock (_writeLock)
            {
                // The reader of a half-made connection then ends without reconnecting: the caller tries again.
                if (_socket == socket)
                {
                    _socket = null;
                }
            }

            socket.Dispose();
            FailPending("The subscription connection could not be made.");
            return false;
        }
    }

    private async Task ReconnectAsync()
    {
        if (await RespSocket.RetryAsync(_server, TryConnectAsync, static () => false, _stopping.Token))
        {
            _onRestored();
        }
    }

    /// <summary>Reads replies until the connection ends, then reconnects. The loop's continuations run where the socket
    /// completes: on the socket event thread when the runtime completes inline (the gateway's default).</summary>
    private async Task ReadAsync(Socket socket)
    {
        var buffer = new byte[64 * 1024];
        var end = 0;
        string? failure = null;
        try
        {
            while (true)
            {
                if (end == buffer.Length)
                {
                    // A reply larger than the buffer: room for it (a message is at most the broker's largest payload).
                    Array.Resize(ref buffer, buffer.Length * 2);
                }

                var read = await socket.ReceiveAsync(buffer.AsMemory(end), SocketFlags.None);
                if (read == 0)
                {
                    failure = "Redis closed the connection.";
                    break;
                }

                end += read;
                var start = 0;
                while (RespFrame.TryRead(buffer.AsSpan(start, end - start), out var frame, out var consumed))
                {
                    Dispatch(frame, buffer.AsMemory(start, consumed));
                    start += consumed;
                }

                // What is left is the start of the next reply.
                Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                end -= start;
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or FormatException or OperationCanceledException)
        {
            failure = ex.Message;
        }

        lock (_writeLock)
        {
            if (_socket != socket)
            {
                return;
            }

            _connected = false;
            _socket = null;
        }

        socket.Dispose();
        FailPending($"The Redis subscription connection failed: {failure}");
        if (!_stopping.IsCancellationRequested)
        {
            Log.Disconnected(_logger, _server.Name, failure ?? "");
            _ = ReconnectAsync();
        }
    }

    private void Dispatch(RespFrame frame, ReadOnlyMemory<byte> reply)
    {
        var span = reply.Span;
        if (frame.Kind == RespKind.Array && frame.Count == 3 && frame.Part(span, 0).SequenceEqual("message"u8))
        {
            _onMessage(Encoding.UTF8.GetString(frame.Part(span, 1)), frame.Part(reply, 2));
            return;
        }

        // Anything else confirms, or refuses, the oldest command waiting.
        if (!_pending.TryDequeue(out var pending))
        {
            return;
        }

        if (frame.Kind == RespKind.Error)
        {
            pending.Done.TrySetException(Unavailable($"Redis refused {pending.What}: {Encoding.UTF8.GetString(frame.Part(span, 0))}"));
        }
        else
        {
            pending.Done.TrySetResult();
        }
    }

    private void FailPending(string reason)
    {
        while (_pending.TryDequeue(out var pending))
        {
            pending.Done.TrySetException(Unavailable(reason));
        }
    }

    private BrokerUnavailableException Unavailable(string message) => new(message) { RetryAfter = _retryAfter };

    /// <summary>A command waiting for its confirmation.</summary>
    private sealed class Pending(string what)
    {
        public string What { get; } = what;

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private static partial class Log
    {
        [LoggerMessage(1110, LogLevel.Information, "Redis subscription connection to {EndPoint} up ({Channels} channels subscribed).")]
        public static partial void Connected(ILogger logger, string endPoint, int channels);

        [LoggerMessage(1111, LogLevel.Warning, "Redis subscription connection to {EndPoint} failed: {Reason}. Reconnecting.")]
        public static partial void Disconnected(ILogger logger, string endPoint, string reason);

        [LoggerMessage(1112, LogLevel.Warning, "Could not connect the Redis subscription connection to {EndPoint}: {Reason}.")]
        public static partial void ConnectFailed(ILogger logger, string endPoint, string reason);

        [LoggerMessage(1113, LogLevel.Debug, "Unsubscribing {Channel} failed: {Message}")]
        public static partial void UnsubscribeFailed(ILogger logger, string channel, string message);
    }
}
