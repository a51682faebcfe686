using System.Net.WebSockets;
using System.Runtime.CompilerServices;

namespace PushService.Client;

/// <summary>Reading whole WebSocket messages into a reusable buffer that grows as needed.</summary>
public static class WebSocketMessages
{
    /// <summary>
    /// Receives one whole message into <paramref name="buffer"/> (doubled whenever it is full) and returns its length and
    /// type; a <see cref="WebSocketMessageType.Close"/> type means the peer closed.
    /// </summary>
    public static async ValueTask<(int Length, WebSocketMessageType Type)> ReceiveAsync(WebSocket socket, StrongBox<byte[]> buffer,
        CancellationToken cancellationToken = default)
    {
        var length = 0;
        ValueWebSocketReceiveResult received;
        do
        {
            if (length == buffer.Value!.Length)
            {
                Array.Resize(ref buffer.Value, buffer.Value.Length * 2);
            }

            received = await socket.ReceiveAsync(buffer.Value.AsMemory(length), cancellationToken);
            length += received.Count;
        }
        while (!received.EndOfMessage && received.MessageType != WebSocketMessageType.Close);

        return (length, received.MessageType);
    }

    /// <summary>
    /// Starts the close handshake if the socket can still send one, giving up after <paramref name="timeout"/>; a socket that
    /// is already closing or broken is left as it is. Never throws for the peer's state.
    /// </summary>
    public static async Task CloseOutputQuietlyAsync(WebSocket socket, string reason, TimeSpan timeout)
    {
        if (socket.State is not (WebSocketState.Open or WebSocketState.CloseReceived))
        {
            return;
        }

        try
        {
            using var cancel = new CancellationTokenSource(timeout);
            await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, reason, cancel.Token);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
        }
    }
}
