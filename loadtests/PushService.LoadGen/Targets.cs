using System.Buffers.Text;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Text;
using HdrHistogram;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using PushService.Client;

namespace PushService.LoadGen;

/// <summary>What subscribers observe, shared by every connection.</summary>
internal sealed class DeliveryMetrics
{
    private long _received;
    private long _windowReceived;
    private long _outOfOrder;
    private volatile bool _recording;

    /// <summary>End-to-end latency in microseconds, recorded only inside the measured window.</summary>
    public LongConcurrentHistogram Latency { get; } = new(1, 60_000_000, 3);

    /// <summary>
    /// The publish call's round trip (request sent to response read) in microseconds, inside the measured window.
    /// Deliveries do not wait for the response; a tail here and in <see cref="Latency"/> together points at what both
    /// paths share (the publishing node's request handling, the cores) rather than at the fan-out.
    /// </summary>
    public LongConcurrentHistogram PublishLatency { get; } = new(1, 60_000_000, 3);

    public long Received => Interlocked.Read(ref _received);

    public long WindowReceived => Interlocked.Read(ref _windowReceived);

    public long OutOfOrder => Interlocked.Read(ref _outOfOrder);

    public void StartWindow()
    {
        Interlocked.Exchange(ref _windowReceived, 0);
        Latency.Reset();
        PublishLatency.Reset();
        _recording = true;
    }

    public void StopWindow() => _recording = false;

    public void Delivered(long sentTimestamp)
    {
        Interlocked.Increment(ref _received);
        if (_recording)
        {
            Interlocked.Increment(ref _windowReceived);
            RecordSince(Latency, sentTimestamp);
        }
    }

    /// <summary>A publish call that began at <paramref name="startedTimestamp"/> was answered now.</summary>
    public void Published(long startedTimestamp)
    {
        if (_recording)
        {
            RecordSince(PublishLatency, startedTimestamp);
        }
    }

    /// <summary>Records the microseconds from <paramref name="timestamp"/> to now, within the histograms' range.</summary>
    private static void RecordSince(LongConcurrentHistogram histogram, long timestamp)
    {
        var micros = (Stopwatch.GetTimestamp() - timestamp) * 1_000_000 / Stopwatch.Frequency;
        histogram.RecordValue(Math.Clamp(micros, 1, 60_000_000));
    }

    public void OutOfOrderSeen() => Interlocked.Increment(ref _outOfOrder);

    /// <summary>The send time in a payload <c>{"ts":N,…}</c>, or -1.</summary>
    public static long SentTimestamp(ReadOnlySpan<byte> json)
    {
        var at = json.IndexOf("\"ts\":"u8);
        return at >= 0 && Utf8Parser.TryParse(json[(at + 5)..], out long ts, out _) ? ts : -1;
    }
}

/// <summary>A server under test: how to subscribe and how to publish.</summary>
internal interface ITarget
{
    Task<IAsyncDisposable> SubscribeAsync(Uri endpoint, IReadOnlyList<string> channels, DeliveryMetrics metrics, CancellationToken cancellationToken);

    Task<bool> PublishAsync(string channel, string payload, CancellationToken cancellationToken);
}

/// <summary>
/// PushService: a raw contract-v1 WebSocket client, cheap enough not to be the bottleneck. It sends <c>connect</c> and
/// its subscribes back to back, unless <paramref name="awaitConnect"/> has it wait for the <c>connect</c> reply first, as
/// the SDK does.
/// </summary>
internal sealed class PushServiceTarget(HttpClient http, bool awaitConnect) : ITarget
{
    public async Task<IAsyncDisposable> SubscribeAsync(Uri endpoint, IReadOnlyList<string> channels, DeliveryMetrics metrics, CancellationToken cancellationToken)
    {
        var subscriber = new PushServiceSubscriber(metrics, channels.Count, awaitConnect);
        await subscriber.StartAsync(endpoint, channels, cancellationToken);
        return subscriber;
    }

    public async Task<bool> PublishAsync(string channel, string payload, CancellationToken cancellationToken)
    {
        using var content = new StringContent($"{{\"data\":{payload}}}", Encoding.UTF8, "application/json");
        using var response = await http.PostAsync($"api/v1/channels/{channel}/messages", content, cancellationToken);
        return response.IsSuccessStatusCode;
    }

    private sealed class PushServiceSubscriber(DeliveryMetrics metrics, int channelCount, bool awaitConnect) : IAsyncDisposable
    {
        private readonly ClientWebSocket _socket = new();
        private readonly SemaphoreSlim _send = new(1, 1);
        private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Dictionary<string, long> _offsets = new(StringComparer.Ordinal);
        private int _replies;
        private Task? _reading;

        public async Task StartAsync(Uri endpoint, IReadOnlyList<string> channels, CancellationToken cancellationToken)
        {
            _socket.Options.KeepAliveInterval = TimeSpan.Zero;
            await _socket.ConnectAsync(endpoint, cancellationToken);
            _reading = Task.Run(ReadAsync, CancellationToken.None);
            await SendAsync("{\"op\":\"connect\",\"id\":1}");
            if (awaitConnect)
            {
                await _connected.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
            }

            for (var i = 0; i < channels.Count; i++)
            {
                await SendAsync($"{{\"op\":\"subscribe\",\"id\":{i + 2},\"channel\":\"{channels[i]}\"}}");
            }

            await _subscribed.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
        }

        private async Task SendAsync(string text)
        {
            await _send.WaitAsync();
            try
            {
                await _socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);
            }
            finally
            {
                _send.Release();
            }
        }

        private async Task ReadAsync()
        {
            var box = new StrongBox<byte[]>(new byte[16 * 1024]);
            try
            {
                while (true)
                {
                    var (length, type) = await WebSocketMessages.ReceiveAsync(_socket, box);
                    var buffer = box.Value!;
                    if (type == WebSocketMessageType.Close)
                    {
                        Fail(new InvalidOperationException($"closed: {_socket.CloseStatus} {_socket.CloseStatusDescription}"));
                        return;
                    }

                    var pong = false;
                    var start = 0;
                    while (start < length)
                    {
                        var end = buffer.AsSpan(start, length - start).IndexOf((byte)'\n');
                        var lineLength = end < 0 ? length - start : end;
                        pong |= Handle(buffer.AsSpan(start, lineLength));
                        start += lineLength + 1;
                    }

                    if (pong)
                    {
                        await SendAsync("{\"op\":\"pong\"}");
                    }
                }
            }
            catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or OperationCanceledException)
            {
                Fail(ex);
            }
        }

        /// <summary>Handles one server object; true when it was a ping to answer.</summary>
        private bool Handle(ReadOnlySpan<byte> span)
        {
            if (span.StartsWith("{\"type\":\"message\""u8))
            {
                var channelStart = span.IndexOf("\"channel\":\""u8) + 11;
                var channelEnd = span[channelStart..].IndexOf((byte)'"') + channelStart;
                var offsetAt = span.IndexOf("\"offset\":"u8) + 9;
                if (!Utf8Parser.TryParse(span[offsetAt..], out long offset, out _))
                {
                    metrics.OutOfOrderSeen();
                    return false;
                }

                var channel = Encoding.ASCII.GetString(span[channelStart..channelEnd]);
                if (_offsets.TryGetValue(channel, out var last) && offset != last + 1)
                {
                    metrics.OutOfOrderSeen();
                }

                _offsets[channel] = offset;
                metrics.Delivered(DeliveryMetrics.SentTimestamp(span[span.IndexOf("\"data\":"u8)..]));
            }
            else if (span.StartsWith("{\"type\":\"ping\""u8))
            {
                return true;
            }
            else if (span.StartsWith("{\"id\":"u8))
            {
                if (span.IndexOf("\"error\""u8) >= 0)
                {
                    Fail(new InvalidOperationException(Encoding.UTF8.GetString(span)));
                    return false;
                }

                // The connect reply comes first: the server answers a connection's commands in order.
                if (++_replies == 1)
                {
                    _connected.TrySetResult();
                }

                if (_replies == channelCount + 1)
                {
                    _subscribed.TrySetResult();
                }
            }

            return false;
        }

        private void Fail(Exception error)
        {
            _connected.TrySetException(error);
            _subscribed.TrySetException(error);
        }

        public async ValueTask DisposeAsync()
        {
            await WebSocketMessages.CloseOutputQuietlyAsync(_socket, "done", TimeSpan.FromSeconds(5));

            if (_reading is not null)
            {
                await Task.WhenAny(_reading, Task.Delay(TimeSpan.FromSeconds(5)));
            }

            _socket.Dispose();
        }
    }
}

/// <summary>The SignalR peer: a HubConnection per subscriber joining one group per channel.</summary>
internal sealed class SignalRTarget(HttpClient http) : ITarget
{
    public async Task<IAsyncDisposable> SubscribeAsync(Uri endpoint, IReadOnlyList<string> channels, DeliveryMetrics metrics, CancellationToken cancellationToken)
    {
        var connection = new HubConnectionBuilder()
            .WithUrl(endpoint, o =>
            {
                o.SkipNegotiation = true;
                o.Transports = HttpTransportType.WebSockets;
            })
            .Build();
        connection.On<string, string>("message", (_, payload) => metrics.Delivered(DeliveryMetrics.SentTimestamp(Encoding.UTF8.GetBytes(payload))));
        await connection.StartAsync(cancellationToken);
        foreach (var channel in channels)
        {
            await connection.InvokeAsync("Join", channel, cancellationToken);
        }

        return connection;
    }

    public async Task<bool> PublishAsync(string channel, string payload, CancellationToken cancellationToken)
    {
        using var content = new StringContent(payload, Encoding.UTF8, "application/json");
        using var response = await http.PostAsync($"publish/{channel}", content, cancellationToken);
        return response.IsSuccessStatusCode;
    }
}
