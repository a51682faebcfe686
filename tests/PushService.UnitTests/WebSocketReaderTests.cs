using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using PushService.Gateway.Transport;

namespace PushService.UnitTests;

public sealed class WebSocketReaderTests
{
    private static readonly byte[] Mask = [0x37, 0xFA, 0x21, 0x3D];

    private static byte[] Frame(int opcode, byte[] payload, bool fin = true)
    {
        var header = new List<byte> { (byte)((fin ? 0x80 : 0) | opcode) };
        if (payload.Length <= 125)
        {
            header.Add((byte)(0x80 | payload.Length));
        }
        else if (payload.Length <= ushort.MaxValue)
        {
            header.Add(0x80 | 126);
            header.Add((byte)(payload.Length >> 8));
            header.Add((byte)payload.Length);
        }
        else
        {
            header.Add(0x80 | 127);
            var length = new byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(length, (ulong)payload.Length);
            header.AddRange(length);
        }

        header.AddRange(Mask);
        return [.. header, .. payload.Select((b, i) => (byte)(b ^ Mask[i % 4]))];
    }

    /// <summary>Feeds <paramref name="bytes"/> in pieces of <paramref name="piece"/> bytes, as a pipe would, and collects what the reader reports.</summary>
    private static List<(WebSocketReadResult Result, string Text)> ReadAll(WebSocketReader reader, byte[] bytes, int piece)
    {
        var results = new List<(WebSocketReadResult, string)>();
        var pending = Array.Empty<byte>();
        for (var offset = 0; offset < bytes.Length; offset += piece)
        {
            pending = [.. pending, .. bytes.AsSpan(offset, Math.Min(piece, bytes.Length - offset))];
            var buffer = new ReadOnlySequence<byte>(pending);
            while (true)
            {
                var result = reader.Read(ref buffer);
                if (result == WebSocketReadResult.NeedMoreData)
                {
                    break;
                }

                var text = result switch
                {
                    WebSocketReadResult.Message => reader.MessageTooLarge ? "<too large>" : Encoding.UTF8.GetString(reader.Message.Span),
                    WebSocketReadResult.Ping or WebSocketReadResult.Close => Convert.ToHexString(reader.ControlPayload),
                    WebSocketReadResult.ProtocolError => reader.Error ?? "",
                    _ => "",
                };
                results.Add((result, text));
                reader.ReleaseMessage();
                if (result is WebSocketReadResult.ProtocolError or WebSocketReadResult.InvalidUtf8)
                {
                    return results;
                }
            }

            pending = buffer.ToArray();
        }

        return results;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(64)]
    [InlineData(100_000)]
    public void FragmentsAndControlFrames_AreReadTheSame_HoweverTheBytesArrive(int piece)
    {
        var big = new string('é', 40_000);
        byte[] stream =
        [
            .. Frame(1, Encoding.UTF8.GetBytes("{\"op\":\"ping\"}")),
            .. Frame(1, Encoding.UTF8.GetBytes("frag"), fin: false),
            .. Frame(9, [1, 2, 3]),
            .. Frame(0, Encoding.UTF8.GetBytes("men"), fin: false),
            .. Frame(0, Encoding.UTF8.GetBytes("ted")),
            .. Frame(1, Encoding.UTF8.GetBytes(big)),
            .. Frame(1, []),
            .. Frame(10, []),
            .. Frame(8, [0x03, 0xE8]),
        ];
        using var reader = new WebSocketReader(100_000);
        var results = ReadAll(reader, stream, piece);
        Assert.Equal(
        [
            (WebSocketReadResult.Message, "{\"op\":\"ping\"}"),
            (WebSocketReadResult.Ping, "010203"),
            (WebSocketReadResult.Message, "fragmented"),
            (WebSocketReadResult.Message, big),
            (WebSocketReadResult.Message, ""),
            (WebSocketReadResult.Pong, ""),
            (WebSocketReadResult.Close, "03E8"),
        ], results);
    }

    [Fact]
    public void MessageOverTheLimit_IsReadToItsEnd_AndReportedTooLarge_ThenReadingGoesOn()
    {
        using var reader = new WebSocketReader(10);
        byte[] stream = [.. Frame(1, new byte[8], fin: false), .. Frame(0, new byte[8]), .. Frame(1, "ok"u8.ToArray())];
        Assert.Equal([(WebSocketReadResult.Message, "<too large>"), (WebSocketReadResult.Message, "ok")], ReadAll(reader, stream, 5));
    }

    [Fact]
    public void TextSplitInsideACharacter_IsValid_ButInvalidUtf8IsNot()
    {
        var euro = Encoding.UTF8.GetBytes("€");
        using (var reader = new WebSocketReader(100))
        {
            byte[] split = [.. Frame(1, euro[..1], fin: false), .. Frame(0, euro[1..])];
            Assert.Equal([(WebSocketReadResult.Message, "€")], ReadAll(reader, split, 100));
        }

        using (var reader = new WebSocketReader(100))
        {
            Assert.Equal(WebSocketReadResult.InvalidUtf8, ReadAll(reader, Frame(1, [0x7B, 0xC3, 0x28, 0x7D]), 100).Single().Result);
        }

        using (var reader = new WebSocketReader(100))
        {
            // Binary messages are not UTF-8 checked; what they mean is the caller's business.
            Assert.Equal(WebSocketReadResult.Message, ReadAll(reader, Frame(2, [0xFF]), 100).Single().Result);
        }
    }

    [Theory]
    [InlineData(new byte[] { 0x81, 0x02, 0x7B, 0x7D }, "masked")]
    [InlineData(new byte[] { 0xC1, 0x80, 0, 0, 0, 0 }, "reserved")]
    [InlineData(new byte[] { 0x83, 0x80, 0, 0, 0, 0 }, "opcode")]
    [InlineData(new byte[] { 0x80, 0x80, 0, 0, 0, 0 }, "continuation")]
    [InlineData(new byte[] { 0x09, 0x80, 0, 0, 0, 0 }, "control")]
    [InlineData(new byte[] { 0x88, 0x81, 0, 0, 0, 0, 3 }, "close")]
    [InlineData(new byte[] { 0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, "range")]
    public void ForbiddenFrames_AreProtocolErrors(byte[] frame, string why)
    {
        using var reader = new WebSocketReader(100);
        var result = ReadAll(reader, frame, frame.Length).Single();
        Assert.Equal(WebSocketReadResult.ProtocolError, result.Result);
        Assert.Contains(why, result.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void NewMessageBeforeTheLastEnded_IsAProtocolError()
    {
        using var reader = new WebSocketReader(100);
        byte[] stream = [.. Frame(1, "a"u8.ToArray(), fin: false), .. Frame(1, "b"u8.ToArray())];
        Assert.Equal(WebSocketReadResult.ProtocolError, ReadAll(reader, stream, 100).Single().Result);
    }
}
