using System.Buffers.Text;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Text;
using PushService.Client;

namespace PushService.LoadGen;

/// <summary>
/// The Socket.IO peer (<c>loadtests/peers/socketio</c>): a raw Engine.IO 4 / Socket.IO 5 client over a WebSocket, a
/// room joined per channel with an acknowledged <c>join</c> event. Raw rather than a client library so that, as for
/// the other targets, the subscriber side stays cheap and the protocol is the same one a browser speaks.
/// </summary>
internal sealed class SocketIoTarget(HttpClient http) : ITarget
{
    public async Task<IAsyncDisposable> SubscribeAsync(Uri endpoint, IReadOnlyList<string> channels, DeliveryMetrics metrics, CancellationToken cancellationToken)
    {
        var subscriber = new Subscriber(metrics, channels.Count);
        await subscriber.StartAsync(EngineIoUri(endpoint), channels, cancellationToken);
        return subscriber;
    }

    public async Task<bool> PublishAsync(string channel, string payload, CancellationToken cancellationToken)
    {
        using var content = new StringContent(payload, Encoding.UTF8, "application/json");
        using var response = await http.PostAsync($"publish/{channel}", content, cancellationToken);
        return response.IsSuccessStatusCode;
    }

    /// <summary>The Engine.IO WebSocket address of a node given as <c>ws://host:port/</c> (or with its own path and query).</summary>
    internal static Uri EngineIoUri(Uri endpoint) =>
        string.IsNullOrEmpty(endpoint.Query) ? new Uri(endpoint, "/socket.io/?EIO=4&transport=websocket") : endpoint;

    /// <summary>The send time in a Socket.IO event whose argument is the payload as a JSON string: <c>…"{\"ts\":N,…}"…</c>.</summary>
    internal static long SentTimestamp(ReadOnlySpan<byte> packet)
    {
        var at = packet.IndexOf("ts\\\":"u8);
        return at >= 0 && Utf8Parser.TryParse(packet[(at + 5)..], out long ts, out _) ? ts : -1;
    }

    private sealed class Subscriber(DeliveryMetrics metrics, int channelCount) : IAsyncDisposable
    {
        private readonly ClientWebSocket _socket = new();
        private readonly SemaphoreSlim _send = new(1, 1);
        private readonly TaskCompletionSource _joined = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _acks;
        private Task? _reading;

        public async Task StartAsync(Uri endpoint, IReadOnlyList<string> channels, CancellationToken cancellationToken)
        {
            _socket.Options.KeepAliveInterval = TimeSpan.Zero;
            await _socket.ConnectAsync(endpoint, cancellationToken);
            _reading = Task.Run(ReadAsync, CancellationToken.None);

            // Engine.IO's open packet comes first; "40" then connects the main namespace.
            await SendAsync("40");
            await _connected.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
            for (var i = 0; i < channels.Count; i++)
            {
                // An event with acknowledgement id i: 4 (message) 2 (event) i ["join","channel"].
                await SendAsync($"42{i}[\"join\",\"{channels[i]}\"]");
            }

            await _joined.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
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
                    if (type == WebSocketMessageType.Close)
                    {
                        Fail(new InvalidOperationException($"closed: {_socket.CloseStatus} {_socket.CloseStatusDescription}"));
                        return;
                    }

                    if (Handle(box.Value.AsSpan(0, length)))
                    {
                        await SendAsync("3");
                    }
                }
            }
            catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or OperationCanceledException)
            {
                Fail(ex);
            }
        }

        /// <summary>Handles one Engine.IO packet; true when it was a ping to answer with a pong.</summary>
        private bool Handle(ReadOnlySpan<byte> packet)
        {
            if (packet.StartsWith("42[\"message\""u8))
            {
                metrics.Delivered(SentTimestamp(packet));
            }
            else if (packet.SequenceEqual("2"u8))
            {
                return true;
            }
            else if (packet.StartsWith("43"u8))
            {
                if (++_acks == channelCount)
                {
                    _joined.TrySetResult();
                }
            }
            else if (packet.StartsWith("40"u8))
            {
                _connected.TrySetResult();
            }
            else if (packet.StartsWith("44"u8) || packet.StartsWith("41"u8) || packet.StartsWith("1"u8))
            {
                Fail(new InvalidOperationException("refused or closed: " + Encoding.UTF8.GetString(packet)));
            }

            return false;
        }

        private void Fail(Exception ex)
        {
            _connected.TrySetException(ex);
            _joined.TrySetException(ex);
        }

        public async ValueTask DisposeAsync()
        {
            await WebSocketMessages.CloseOutputQuietlyAsync(_socket, "done", TimeSpan.FromSeconds(5));
            if (_reading is not null)
            {
                await Task.WhenAny(_reading, Task.Delay(TimeSpan.FromSeconds(5)));
            }

            _socket.Dispose();
            _send.Dispose();
        }
    }
}
