using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using PushService.Gateway.Transport;

namespace PushService.UnitTests;

/// <summary>
/// Throws at least 100,000 random and mutated frame streams at the RFC 6455 frame reader, beside the command decoder's
/// fuzz test. None may throw; every stream ends in messages, control frames, a protocol error (1002) or invalid UTF-8
/// (1007); the same bytes give the same events however the transport splits them; and a stream built only of valid
/// frames gives exactly the messages that were framed. Deterministic seeds, so a failure reproduces.
/// </summary>
public sealed class WebSocketReaderFuzzTests
{
    private const int MaxMessageBytes = 4096;

    [Fact]
    public void HundredThousandRandomAndMutatedStreams_NeverThrow_AndReadTheSameHoweverSplit()
    {
        var random = new Random(20261202);
        var counts = new Dictionary<WebSocketReadResult, int>();
        var exact = 0;
        for (var i = 0; i < 100_000; i++)
        {
            var (stream, expected) = (i % 5) switch
            {
                0 => (RandomBytes(random), null),
                1 => (FlipBits(random, ValidStream(random).Bytes), null),
                2 => (Truncate(random, ValidStream(random).Bytes), null),
                3 => (RandomHeaders(random), null),
                _ => ValidStream(random),
            };

            var whole = ReadAll(stream, stream.Length == 0 ? 1 : stream.Length, random);
            var split = ReadAll(stream, 0, random);
            Assert.Equal(whole, split);
            foreach (var (result, _) in whole)
            {
                counts[result] = counts.GetValueOrDefault(result) + 1;
            }

            if (expected is not null)
            {
                Assert.Equal(expected, whole);
                exact++;
            }
        }

        // Every outcome was reached, so the fuzzer got past the first header byte.
        foreach (var outcome in new[] { WebSocketReadResult.Message, WebSocketReadResult.Ping, WebSocketReadResult.Pong, WebSocketReadResult.Close,
            WebSocketReadResult.ProtocolError, WebSocketReadResult.InvalidUtf8 })
        {
            Assert.True(counts.GetValueOrDefault(outcome) > 100, $"only {counts.GetValueOrDefault(outcome)} × {outcome}");
        }

        Assert.Equal(20_000, exact);
    }

    /// <summary>
    /// Feeds the stream in pieces (of <paramref name="piece"/> bytes, or random sizes when 0), as the transport would,
    /// until an event after which the gateway closes (protocol error, invalid UTF-8, the client's close).
    /// </summary>
    private static List<(WebSocketReadResult, string)> ReadAll(byte[] stream, int piece, Random random)
    {
        using var reader = new WebSocketReader(MaxMessageBytes);
        var results = new List<(WebSocketReadResult, string)>();
        var pending = Array.Empty<byte>();
        var offset = 0;
        while (offset < stream.Length)
        {
            var size = piece > 0 ? piece : random.Next(1, 40);
            var take = Math.Min(size, stream.Length - offset);
            pending = [.. pending, .. stream.AsSpan(offset, take)];
            offset += take;
            var buffer = new ReadOnlySequence<byte>(pending);
            while (true)
            {
                var before = buffer.Length;
                var result = reader.Read(ref buffer);
                Assert.True(buffer.Length <= before);
                if (result == WebSocketReadResult.NeedMoreData)
                {
                    break;
                }

                var what = result switch
                {
                    WebSocketReadResult.Message when reader.MessageTooLarge => "too large",
                    WebSocketReadResult.Message => $"{reader.MessageType}:{Convert.ToHexString(reader.Message.Span)}",
                    WebSocketReadResult.Ping or WebSocketReadResult.Close => Convert.ToHexString(reader.ControlPayload),
                    WebSocketReadResult.ProtocolError => reader.Error ?? "",
                    _ => "",
                };
                if (result == WebSocketReadResult.Message)
                {
                    Assert.True(reader.MessageTooLarge || reader.Message.Length <= MaxMessageBytes);
                }

                if (result == WebSocketReadResult.ProtocolError)
                {
                    Assert.False(string.IsNullOrEmpty(reader.Error));
                }

                results.Add((result, what));
                reader.ReleaseMessage();
                if (result is WebSocketReadResult.ProtocolError or WebSocketReadResult.InvalidUtf8 or WebSocketReadResult.Close)
                {
                    return results;
                }
            }

            pending = buffer.ToArray();
        }

        return results;
    }

    /// <summary>A stream of valid client frames, and the events the reader must report for it.</summary>
    private static (byte[] Bytes, List<(WebSocketReadResult, string)>? Expected) ValidStream(Random random)
    {
        var bytes = new List<byte>();
        var expected = new List<(WebSocketReadResult, string)>();
        var frames = random.Next(1, 5);
        for (var f = 0; f < frames; f++)
        {
            switch (random.Next(6))
            {
                case 0:
                case 1:
                {
                    // A text message, maybe fragmented, with a ping between its fragments.
                    var text = Encoding.UTF8.GetBytes(RandomText(random, random.Next(0, 300)));
                    var cut = text.Length > 1 && random.Next(2) == 0 ? random.Next(1, text.Length) : text.Length;
                    if (cut < text.Length)
                    {
                        bytes.AddRange(Frame(random, 0x1, text[..cut], fin: false));
                        if (random.Next(2) == 0)
                        {
                            bytes.AddRange(Frame(random, 0x9, [7]));
                            expected.Add((WebSocketReadResult.Ping, "07"));
                        }

                        bytes.AddRange(Frame(random, 0x0, text[cut..]));
                    }
                    else
                    {
                        bytes.AddRange(Frame(random, 0x1, text));
                    }

                    expected.Add((WebSocketReadResult.Message, $"{WebSocketOpcode.Text}:{Convert.ToHexString(text)}"));
                    break;
                }

                case 2:
                {
                    var data = new byte[random.Next(0, 200)];
                    random.NextBytes(data);
                    bytes.AddRange(Frame(random, 0x2, data));
                    expected.Add((WebSocketReadResult.Message, $"{WebSocketOpcode.Binary}:{Convert.ToHexString(data)}"));
                    break;
                }

                case 3:
                {
                    var payload = new byte[random.Next(0, 126)];
                    random.NextBytes(payload);
                    bytes.AddRange(Frame(random, 0x9, payload));
                    expected.Add((WebSocketReadResult.Ping, Convert.ToHexString(payload)));
                    break;
                }

                case 4:
                    bytes.AddRange(Frame(random, 0xA, new byte[random.Next(0, 126)]));
                    expected.Add((WebSocketReadResult.Pong, ""));
                    break;

                default:
                    bytes.AddRange(Frame(random, 0x1, new byte[MaxMessageBytes + random.Next(1, 100)]));
                    expected.Add((WebSocketReadResult.Message, "too large"));
                    break;
            }
        }

        if (random.Next(4) == 0)
        {
            bytes.AddRange(Frame(random, 0x8, [0x03, 0xE8]));
            expected.Add((WebSocketReadResult.Close, "03E8"));
        }

        return ([.. bytes], expected);
    }

    /// <summary>A masked client frame, its length in the shortest form or, now and then, a longer one (still valid).</summary>
    private static byte[] Frame(Random random, int opcode, byte[] payload, bool fin = true)
    {
        var frame = new List<byte> { (byte)((fin ? 0x80 : 0) | opcode) };
        var form = payload.Length <= 125 ? 0 : payload.Length <= ushort.MaxValue ? 1 : 2;
        if (opcode < 8 && random.Next(8) == 0)
        {
            form = Math.Max(form, random.Next(1, 3));
        }

        switch (form)
        {
            case 0:
                frame.Add((byte)(0x80 | payload.Length));
                break;
            case 1:
                frame.Add(0x80 | 126);
                frame.Add((byte)(payload.Length >> 8));
                frame.Add((byte)payload.Length);
                break;
            default:
                frame.Add(0x80 | 127);
                var length = new byte[8];
                BinaryPrimitives.WriteUInt64BigEndian(length, (ulong)payload.Length);
                frame.AddRange(length);
                break;
        }

        var mask = new byte[4];
        random.NextBytes(mask);
        frame.AddRange(mask);
        frame.AddRange(payload.Select((b, i) => (byte)(b ^ mask[i % 4])));
        return [.. frame];
    }

    /// <summary>Frame headers with random bits: any opcode, RSV, mask bit and length form, then some payload.</summary>
    private static byte[] RandomHeaders(Random random)
    {
        var bytes = new List<byte>();
        for (var f = random.Next(1, 4); f > 0; f--)
        {
            bytes.Add((byte)random.Next(256));
            var lengthByte = (byte)random.Next(256);
            bytes.Add(lengthByte);
            var extra = (lengthByte & 0x7F) switch { 126 => 2, 127 => 8, _ => 0 } + ((lengthByte & 0x80) != 0 ? 4 : 0);
            for (var e = 0; e < extra; e++)
            {
                bytes.Add((byte)(e < 2 && (lengthByte & 0x7F) == 127 ? random.Next(2) * 0x80 : random.Next(256)));
            }

            var payload = new byte[random.Next(0, 60)];
            random.NextBytes(payload);
            bytes.AddRange(payload);
        }

        return [.. bytes];
    }

    private static string RandomText(Random random, int length)
    {
        string[] pieces = ["a", "{", "\"op\"", "é", "€", "\ud83d\ude00", "\n", " ", "0"];
        var builder = new StringBuilder();
        while (builder.Length < length)
        {
            builder.Append(pieces[random.Next(pieces.Length)]);
        }

        return builder.ToString();
    }

    private static byte[] RandomBytes(Random random)
    {
        var bytes = new byte[random.Next(0, 120)];
        random.NextBytes(bytes);
        return bytes;
    }

    private static byte[] FlipBits(Random random, byte[] bytes)
    {
        var copy = (byte[])bytes.Clone();
        for (var flips = random.Next(1, 4); flips > 0 && copy.Length > 0; flips--)
        {
            copy[random.Next(copy.Length)] ^= (byte)(1 << random.Next(8));
        }

        return copy;
    }

    private static byte[] Truncate(Random random, byte[] bytes) => bytes[..random.Next(0, bytes.Length + 1)];
}
