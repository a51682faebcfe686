using Xunit;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using PushService.Client;

namespace PushService.Testing;

/// <summary>
/// A contract-level WebSocket client for tests: sends commands with ids, matches replies, splits server frames on
/// <c>\n</c>, answers server pings, and records how the server closed the connection.
/// </summary>
public sealed class TestClient : IAsyncDisposable
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);
    private readonly ClientWebSocket _socket;
    private readonly HttpMessageInvoker? _invoker;
    private readonly ConcurrentDictionary<long, TaskCompletionSource<JsonElement>> _pending = new();
    private readonly Channel<JsonElement> _pushes = Channel.CreateUnbounded<JsonElement>();
    private readonly TaskCompletionSource<(int Code, string Reason)> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _startReading = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private long _nextId;
    private Task? _readLoop;

    private TestClient(ClientWebSocket socket, HttpMessageInvoker? invoker)
    {
        _socket = socket;
        _invoker = invoker;
    }

    /// <summary>Answer server pings with pong.</summary>
    public bool AutoPong { get; set; } = true;

    private int _framesReceived;
    private int _multiObjectFrames;
    private int _pingsReceived;

    public int FramesReceived => Volatile.Read(ref _framesReceived);

    public int MultiObjectFrames => Volatile.Read(ref _multiObjectFrames);

    public int PingsReceived => Volatile.Read(ref _pingsReceived);

    public string? SubProtocol => _socket.SubProtocol;

    public static async Task<TestClient> OpenAsync(Uri uri, Action<ClientWebSocketOptions>? configure = null, int? receiveBufferBytes = null, bool startReading = true)
    {
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        configure?.Invoke(socket.Options);
        HttpMessageInvoker? invoker = null;
        if (receiveBufferBytes is { } size)
        {
            // A small fixed receive buffer turns off autotuning, so a client that stops reading pushes back at once.
            invoker = new HttpMessageInvoker(new SocketsHttpHandler
            {
                ConnectCallback = async (context, ct) =>
                {
                    var s = new Socket(SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = size, NoDelay = true };
                    await s.ConnectAsync(context.DnsEndPoint, ct);
                    return new NetworkStream(s, ownsSocket: true);
                },
            });
        }

        using var cts = new CancellationTokenSource(DefaultTimeout);
        await socket.ConnectAsync(uri, invoker, cts.Token);
        var client = new TestClient(socket, invoker);
        client._readLoop = Task.Run(client.ReadLoopAsync);
        if (startReading)
        {
            client.StartReading();
        }

        return client;
    }

    public static async Task<TestClient> OpenPausedAsync(Uri uri, int receiveBufferBytes) =>
        await OpenAsync(uri, null, receiveBufferBytes, startReading: false);

    public void StartReading() => _startReading.TrySetResult();

    private volatile TaskCompletionSource? _resume;

    /// <summary>Stops reading from the socket after the current frame, so the server's sends back up.</summary>
    public void StopReading() => _resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void ResumeReading() => _resume?.TrySetResult();

    /// <summary>Every push received so far.</summary>
    public List<JsonElement> DrainPushes()
    {
        var list = new List<JsonElement>();
        while (_pushes.Reader.TryRead(out var push))
        {
            list.Add(push);
        }

        return list;
    }

    public WebSocketState State => _socket.State;

    public Task SendRawAsync(string text) => SendRawAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text);

    public async Task SendRawAsync(byte[] bytes, WebSocketMessageType type)
    {
        await _sendLock.WaitAsync();
        try
        {
            await _socket.SendAsync(bytes, type, endOfMessage: true, CancellationToken.None);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Sends a command with a fresh id and waits for its reply.</summary>
    public async Task<JsonElement> RequestAsync(object command, TimeSpan? timeout = null)
    {
        var id = Interlocked.Increment(ref _nextId);
        var tcs = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = tcs;
        var fields = JsonSerializer.SerializeToNode(command)!.AsObject();
        fields["id"] = id;
        await SendRawAsync(fields.ToJsonString());
        return await tcs.Task.WaitAsync(timeout ?? DefaultTimeout);
    }

    /// <summary>Sends a command and returns its <c>result</c>, failing the test on an error reply.</summary>
    public async Task<JsonElement> ResultAsync(object command)
    {
        var reply = await RequestAsync(command);
        Assert.True(reply.TryGetProperty("result", out var result), $"expected a result, got {reply}");
        return result;
    }

    /// <summary>Sends a command and returns its error code, failing the test on a result.</summary>
    public async Task<string> ErrorCodeAsync(object command)
    {
        var reply = await RequestAsync(command);
        Assert.True(reply.TryGetProperty("error", out var error), $"expected an error, got {reply}");
        return error.GetProperty("code").GetString()!;
    }

    public async Task<JsonElement> NextPushAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        return await _pushes.Reader.ReadAsync(cts.Token);
    }

    public bool TryNextPush(out JsonElement push) => _pushes.Reader.TryRead(out push);

    /// <summary>Reads pushes until <paramref name="count"/> messages of <paramref name="channel"/> arrived.</summary>
    public async Task<List<JsonElement>> MessagesAsync(string channel, int count, TimeSpan? timeout = null)
    {
        var messages = new List<JsonElement>();
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        while (messages.Count < count)
        {
            JsonElement push;
            try
            {
                push = await _pushes.Reader.ReadAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"got {messages.Count} of {count} messages on {channel}");
                throw;
            }
            catch (ChannelClosedException)
            {
                var closed = _closed.Task.IsCompleted ? _closed.Task.Result.ToString() : "?";
                Assert.Fail($"got {messages.Count} of {count} messages on {channel} before the connection closed: {closed}");
                throw;
            }

            if (push.GetProperty("type").GetString() == "message" && push.GetProperty("channel").GetString() == channel)
            {
                messages.Add(push);
            }
        }

        return messages;
    }

    /// <summary>Waits for the server to close the connection and returns its close code and reason.</summary>
    public Task<(int Code, string Reason)> ClosedAsync(TimeSpan? timeout = null) => _closed.Task.WaitAsync(timeout ?? DefaultTimeout);

    private async Task ReadLoopAsync()
    {
        await _startReading.Task;
        var box = new StrongBox<byte[]>(new byte[1 << 20]);
        try
        {
            while (true)
            {
                if (_resume is { } resume)
                {
                    await resume.Task;
                }

                var (length, type) = await WebSocketMessages.ReceiveAsync(_socket, box);
                var buffer = box.Value!;
                if (type == WebSocketMessageType.Close)
                {
                    _closed.TrySetResult(((int)(_socket.CloseStatus ?? 0), _socket.CloseStatusDescription ?? ""));
                    if (_socket.State == WebSocketState.CloseReceived)
                    {
                        await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
                    }

                    break;
                }

                Interlocked.Increment(ref _framesReceived);
                var text = Encoding.UTF8.GetString(buffer, 0, length);
                var parts = text.Split('\n');
                if (parts.Length > 1)
                {
                    Interlocked.Increment(ref _multiObjectFrames);
                }

                foreach (var part in parts)
                {
                    await HandleAsync(JsonDocument.Parse(part).RootElement.Clone());
                }
            }
        }
        catch (Exception ex)
        {
            _closed.TrySetResult((-1, ex.GetType().Name + ": " + ex.Message));
        }
        finally
        {
            foreach (var pending in _pending.Values)
            {
                pending.TrySetException(new InvalidOperationException("The connection closed before the reply."));
            }

            _pushes.Writer.TryComplete();
        }
    }

    private async Task HandleAsync(JsonElement element)
    {
        if (element.TryGetProperty("id", out var id))
        {
            if (_pending.TryRemove(id.GetInt64(), out var tcs))
            {
                tcs.TrySetResult(element);
            }

            return;
        }

        if (element.GetProperty("type").GetString() == "ping")
        {
            Interlocked.Increment(ref _pingsReceived);
            if (AutoPong)
            {
                await SendRawAsync("{\"op\":\"pong\"}");
            }

            return;
        }

        _pushes.Writer.TryWrite(element);
    }

    public async ValueTask DisposeAsync()
    {
        StartReading();
        await WebSocketMessages.CloseOutputQuietlyAsync(_socket, "bye", TimeSpan.FromSeconds(5));

        if (_readLoop is not null)
        {
            await Task.WhenAny(_readLoop, Task.Delay(TimeSpan.FromSeconds(5)));
        }

        _socket.Dispose();
        _invoker?.Dispose();
    }
}
