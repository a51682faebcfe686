using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text;

namespace PushService.Gateway.Transport;

/// <summary>The frame opcodes of RFC 6455 section 5.2.</summary>
internal enum WebSocketOpcode : byte
{
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

/// <summary>
/// Writes server frames (RFC 6455 section 5): never masked, never fragmented. Frames go straight into the transport's
/// <see cref="PipeWriter"/>, so a push costs one copy into the socket's buffer and nothing else.
/// </summary>
internal static class WebSocketFrames
{
    /// <summary>The longest server frame header: two bytes and a 64-bit length.</summary>
    public const int MaxHeaderBytes = 10;

    /// <summary>The longest control frame payload (section 5.5).</summary>
    public const int MaxControlPayload = 125;

    public static int WriteHeader(Span<byte> destination, WebSocketOpcode opcode, long payloadLength)
    {
        destination[0] = (byte)(0x80 | (byte)opcode);
        if (payloadLength <= 125)
        {
            destination[1] = (byte)payloadLength;
            return 2;
        }

        if (payloadLength <= ushort.MaxValue)
        {
            destination[1] = 126;
            BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)payloadLength);
            return 4;
        }

        destination[1] = 127;
        BinaryPrimitives.WriteUInt64BigEndian(destination[2..], (ulong)payloadLength);
        return 10;
    }

    public static void WriteHeader(PipeWriter output, WebSocketOpcode opcode, long payloadLength)
    {
        var header = output.GetSpan(MaxHeaderBytes);
        output.Advance(WriteHeader(header, opcode, payloadLength));
    }

    public static void Write(PipeWriter output, WebSocketOpcode opcode, ReadOnlySpan<byte> payload)
    {
        WriteHeader(output, opcode, payload.Length);
        output.Write(payload);
    }

    /// <summary>A close frame: the status code and a short reason, cut to fit a control frame.</summary>
    public static void WriteClose(PipeWriter output, int code, string reason)
    {
        Span<byte> payload = stackalloc byte[MaxControlPayload];
        BinaryPrimitives.WriteUInt16BigEndian(payload, (ushort)code);
        var length = 2;
        if (Encoding.UTF8.GetMaxByteCount(reason.Length) <= MaxControlPayload - 2)
        {
            length += Encoding.UTF8.GetBytes(reason, payload[2..]);
        }

        Write(output, WebSocketOpcode.Close, payload[..length]);
    }
}
