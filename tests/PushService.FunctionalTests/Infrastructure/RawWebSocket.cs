using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace PushService.FunctionalTests.Infrastructure;

/// <summary>
/// A WebSocket client written against the bytes of RFC 6455, for what a well-behaved client library will not send:
/// unmasked or reserved-bit frames, odd fragmentation, frames in the same packet as the handshake.
/// </summary>
public sealed class RawWebSocket : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly Queue<string> _lines = new();

    private RawWebSocket(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        _stream.ReadTimeout = 10_000;
    }

    /// <summary>The response head to the upgrade request, lines without their CRLF.</summary>
    public IReadOnlyList<string> ResponseHead { get; private set; } = [];

    public string? Header(string name) => ResponseHead.Skip(1)
        .Select(line => line.Split(':', 2))
        .Where(parts => parts.Length == 2 && parts[0].Trim().Equals(name, StringComparison.OrdinalIgnoreCase))
        .Select(parts => parts[1].Trim())
        .FirstOrDefault();

    /// <summary>Opens a TCP connection and sends the upgrade request (plus <paramref name="sameWrite"/> in the same write).</summary>
    public static async Task<RawWebSocket> OpenAsync(Uri baseAddress, string key, string? extraHeaders = null, byte[]? sameWrite = null)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(baseAddress.Host, baseAddress.Port);
        var socket = new RawWebSocket(tcp);
        var request = $"GET /ws HTTP/1.1\r\nHost: {baseAddress.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extraHeaders}\r\n";
        byte[] bytes = [.. Encoding.ASCII.GetBytes(request), .. sameWrite ?? []];
        await socket._stream.WriteAsync(bytes);
        socket.ResponseHead = await socket.ReadHeadAsync();
        return socket;
    }

    public static string NewKey() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5350", Justification = "RFC 6455 prescribes SHA-1 for the handshake.")]
    public static string ExpectedAccept(string key) =>
        Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));

    /// <summary>One client frame: masked unless told otherwise, FIN and RSV bits as given.</summary>
    public static byte[] Frame(int opcode, ReadOnlySpan<byte> payload, bool fin = true, bool masked = true, int rsv = 0)
    {
        var frame = new List<byte> { (byte)((fin ? 0x80 : 0) | (rsv << 4) | opcode) };
        var maskBit = masked ? 0x80 : 0;
        if (payload.Length <= 125)
        {
            frame.Add((byte)(maskBit | payload.Length));
        }
        else
        {
            frame.Add((byte)(maskBit | 126));
            frame.Add((byte)(payload.Length >> 8));
            frame.Add((byte)payload.Length);
        }

        var mask = masked ? RandomNumberGenerator.GetBytes(4) : [0, 0, 0, 0];
        if (masked)
        {
            frame.AddRange(mask);
        }

        for (var i = 0; i < payload.Length; i++)
        {
            frame.Add((byte)(payload[i] ^ mask[i % 4]));
        }

        return [.. frame];
    }

    public static byte[] Text(string text, bool fin = true) => Frame(0x1, Encoding.UTF8.GetBytes(text), fin);

    public async Task SendAsync(params byte[][] frames)
    {
        foreach (var frame in frames)
        {
            await _stream.WriteAsync(frame);
        }
    }

    /// <summary>The next server frame: opcode and payload; null when the server closed the TCP connection.</summary>
    public async Task<(int Opcode, byte[] Payload)?> ReceiveAsync()
    {
        var header = await ReadExactlyAsync(2);
        if (header is null)
        {
            return null;
        }

        Assert.Equal(0x80, header[0] & 0xF0);
        Assert.Equal(0, header[1] & 0x80);
        long length = header[1] & 0x7F;
        if (length == 126)
        {
            length = BinaryPrimitives.ReadUInt16BigEndian(await ReadExactlyAsync(2));
        }
        else if (length == 127)
        {
            length = (long)BinaryPrimitives.ReadUInt64BigEndian(await ReadExactlyAsync(8));
        }

        var payload = length == 0 ? [] : await ReadExactlyAsync((int)length) ?? throw new IOException("cut off");
        return (header[0] & 0x0F, payload);
    }

    /// <summary>Reads frames up to the close frame and returns its code.</summary>
    public async Task<int> ReceiveCloseCodeAsync()
    {
        while (await ReceiveAsync() is { } frame)
        {
            if (frame.Opcode == 0x8)
            {
                return BinaryPrimitives.ReadUInt16BigEndian(frame.Payload);
            }
        }

        throw new IOException("The connection ended without a close frame.");
    }

    /// <summary>Reads replies and pushes (several may share a text frame, one per line) until one contains <paramref name="fragment"/>.</summary>
    public async Task<string> ReceiveTextContainingAsync(string fragment)
    {
        while (true)
        {
            while (_lines.TryDequeue(out var line))
            {
                if (line.Contains(fragment, StringComparison.Ordinal))
                {
                    return line;
                }
            }

            var frame = await ReceiveAsync() ?? throw new IOException($"The connection ended before a line with {fragment}.");
            if (frame.Opcode == 0x1)
            {
                foreach (var line in Encoding.UTF8.GetString(frame.Payload).Split('\n'))
                {
                    _lines.Enqueue(line);
                }
            }
        }
    }

    private async Task<IReadOnlyList<string>> ReadHeadAsync()
    {
        var head = new List<byte>();
        while (!(head.Count >= 4 && head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n'))
        {
            var next = await ReadExactlyAsync(1) ?? throw new IOException("The connection ended during the response head.");
            head.Add(next[0]);
        }

        return Encoding.ASCII.GetString([.. head]).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
    }

    private async Task<byte[]?> ReadExactlyAsync(int count)
    {
        var buffer = new byte[count];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var read = await _stream.ReadAtLeastAsync(buffer, count, throwOnEndOfStream: false, timeout.Token);
        return read < count ? null : buffer;
    }

    public ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }
}
