using System.Text.Json;

namespace PushService.Gateway.Protocol;

/// <summary>
/// Published <c>data</c>: a JSON value validated once at the edge and kept as raw UTF-8 bytes from then on.
/// </summary>
public static class JsonData
{
    /// <summary>
    /// Copies the raw JSON value the reader is on and moves the reader past it. Raw CR and LF bytes can only be
    /// whitespace between tokens in valid JSON (strings must escape them), so each becomes a space: server frames are
    /// split on line breaks, and every other byte stays as published.
    /// </summary>
    public static byte[] ReadRawValue(ref Utf8JsonReader reader, ReadOnlySpan<byte> source)
    {
        var start = (int)reader.TokenStartIndex;
        reader.Skip();
        var end = (int)reader.BytesConsumed;
        return Normalize(source[start..end]);
    }

    /// <summary>A copy of <paramref name="raw"/> with raw line breaks turned into spaces.</summary>
    public static byte[] Normalize(ReadOnlySpan<byte> raw)
    {
        var copy = raw.ToArray();
        copy.AsSpan().Replace((byte)'\n', (byte)' ');
        copy.AsSpan().Replace((byte)'\r', (byte)' ');
        return copy;
    }
}
