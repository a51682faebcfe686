using System.Buffers;
using System.Text;

namespace PushService.Broker.Redis.Resp;

/// <summary>Writes commands in RESP2, as arrays of bulk strings, to a buffer; nothing is sent until the buffer is.</summary>
internal readonly struct RespWriter(IBufferWriter<byte> output)
{
    /// <summary>Starts a command of <paramref name="parts"/> parts (its name included).</summary>
    public void WriteArray(int parts) => WriteHeader((byte)'*', parts);

    public void WriteBulk(ReadOnlySpan<byte> value)
    {
        WriteHeader((byte)'$', value.Length);
        var span = output.GetSpan(value.Length + 2);
        value.CopyTo(span);
        span[value.Length] = (byte)'\r';
        span[value.Length + 1] = (byte)'\n';
        output.Advance(value.Length + 2);
    }

    public void WriteBulk(string value)
    {
        var length = Encoding.UTF8.GetByteCount(value);
        WriteHeader((byte)'$', length);
        var span = output.GetSpan(length + 2);
        Encoding.UTF8.GetBytes(value, span);
        span[length] = (byte)'\r';
        span[length + 1] = (byte)'\n';
        output.Advance(length + 2);
    }

    public void WriteBulk(long value)
    {
        // 20 digits and a sign at most: the header is written after the digits are known.
        Span<byte> digits = stackalloc byte[24];
        value.TryFormat(digits, out var written, provider: System.Globalization.CultureInfo.InvariantCulture);
        WriteBulk(digits[..written]);
    }

    /// <summary>A whole command of string parts, for the rare ones (handshakes, subscriptions).</summary>
    public static byte[] Command(params string[] parts)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new RespWriter(buffer);
        writer.WriteArray(parts.Length);
        foreach (var part in parts)
        {
            writer.WriteBulk(part);
        }

        return buffer.WrittenSpan.ToArray();
    }

    private void WriteHeader(byte kind, int count)
    {
        var span = output.GetSpan(16);
        span[0] = kind;
        count.TryFormat(span[1..], out var written, provider: System.Globalization.CultureInfo.InvariantCulture);
        span[1 + written] = (byte)'\r';
        span[2 + written] = (byte)'\n';
        output.Advance(written + 3);
    }
}
