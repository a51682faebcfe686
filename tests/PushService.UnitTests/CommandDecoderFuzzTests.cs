using System.Text;
using PushService.Gateway.Protocol;

namespace PushService.UnitTests;

/// <summary>
/// Throws at least 100,000 random and mutated frames at the command decoder: none may throw, and every answer must be
/// consistent (a command, or a fatal error, never both or neither; a decoded command has a known op and a valid id).
/// Deterministic seeds, so a failure reproduces.
/// </summary>
public sealed class CommandDecoderFuzzTests
{
    private static readonly string[] Seeds =
    [
        """{"op":"connect","id":1,"token":"eyJhbGciOiJIUzI1NiJ9.e30.x","name":"app","version":"1.2"}""",
        """{"op":"subscribe","id":2,"channel":"chat:room-1","since":{"epoch":"k2x7qv4a","offset":41},"token":"t"}""",
        """{"op":"publish","id":3,"channel":"dm#42,77","data":{"text":"héllo \u00e9 \n","n":[1,2.5e3,-0,true,null,{"deep":[[]]}]}}""",
        """{"op":"history","id":4,"channel":"news","since":{"epoch":"e","offset":0},"limit":10}""",
        """{"op":"unsubscribe","id":5,"channel":"news"}""",
        """{"op":"presence","id":6,"channel":"room:1"}""",
        """{"op":"refresh","id":7,"token":"abc"}""",
        """{"op":"ping","id":8}""",
        """{"op":"pong"}""",
    ];

    private static readonly string[] Fragments =
    [
        "{", "}", "[", "]", ",", ":", "\"", "\\", "\\u0000", "\\ud800", "null", "true", "1e999", "-", "0.", "\"op\"", "\"id\"", "\"data\"",
        "\"since\"", "{\"epoch\":1}", "\u00e9", "\ud83d\ude00", "\t", "\r\n", " ", "/*", "*/", "NaN", "9223372036854775808",
    ];

    [Fact]
    public void HundredThousandRandomAndMutatedFrames_NeverThrow()
    {
        var random = new Random(20261124);
        var decoded = 0;
        var fatal = 0;
        for (var i = 0; i < 120_000; i++)
        {
            var frame = (i % 6) switch
            {
                0 => RandomBytes(random),
                1 => FlipBytes(random, Seed(random)),
                2 => Truncate(random, Seed(random)),
                3 => Splice(random, Seed(random)),
                4 => RandomJson(random),
                _ => Duplicate(random, Seed(random)),
            };

            var command = CommandDecoder.Decode(frame, out var error);
            Assert.True(command is null ^ error is null, "exactly one of a command or a fatal error");
            if (command is null)
            {
                fatal++;
                continue;
            }

            decoded++;
            Assert.NotEqual(CommandOp.Unknown, command.Op);
            Assert.True(command.Op == CommandOp.Pong || command.Id > 0);
            if (command.Data is { } data)
            {
                Assert.DoesNotContain((byte)'\n', data);
                Assert.DoesNotContain((byte)'\r', data);
            }
        }

        // Both sides were exercised, so the fuzzer reached past the first byte.
        Assert.True(decoded > 1000, $"only {decoded} frames decoded");
        Assert.True(fatal > 1000, $"only {fatal} frames refused");
    }

    private static byte[] Seed(Random random) => Encoding.UTF8.GetBytes(Seeds[random.Next(Seeds.Length)]);

    private static byte[] RandomBytes(Random random)
    {
        var bytes = new byte[random.Next(0, 200)];
        random.NextBytes(bytes);
        return bytes;
    }

    private static byte[] FlipBytes(Random random, byte[] frame)
    {
        var flips = random.Next(1, 4);
        for (var f = 0; f < flips && frame.Length > 0; f++)
        {
            frame[random.Next(frame.Length)] = (byte)random.Next(256);
        }

        return frame;
    }

    private static byte[] Truncate(Random random, byte[] frame) => frame[..random.Next(frame.Length + 1)];

    private static byte[] Splice(Random random, byte[] frame)
    {
        var text = Encoding.UTF8.GetString(frame);
        var at = random.Next(text.Length + 1);
        return Encoding.UTF8.GetBytes(text[..at] + Fragments[random.Next(Fragments.Length)] + text[at..]);
    }

    private static byte[] Duplicate(Random random, byte[] frame)
    {
        var from = random.Next(frame.Length);
        var length = random.Next(frame.Length - from + 1);
        return [.. frame, .. frame.AsSpan(from, length).ToArray()];
    }

    private static byte[] RandomJson(Random random)
    {
        var builder = new StringBuilder("{\"op\":\"").Append(new[] { "subscribe", "publish", "history", "connect", "ping", "pong", "x" }[random.Next(7)]).Append('"');
        if (random.Next(4) > 0)
        {
            builder.Append(",\"id\":").Append(random.Next(-2, 1000));
        }

        var fields = random.Next(0, 5);
        for (var f = 0; f < fields; f++)
        {
            builder.Append(",\"").Append(new[] { "channel", "data", "since", "limit", "token", "name", "zzz" }[random.Next(7)]).Append("\":");
            AppendValue(builder, random, depth: 0);
        }

        return Encoding.UTF8.GetBytes(builder.Append('}').ToString());
    }

    private static void AppendValue(StringBuilder builder, Random random, int depth)
    {
        switch (depth > 70 ? random.Next(4) : random.Next(6))
        {
            case 0: builder.Append(random.Next()); break;
            case 1: builder.Append('"').Append(Convert.ToBase64String(BitConverter.GetBytes(random.NextInt64()))).Append('"'); break;
            case 2: builder.Append(random.Next(2) == 0 ? "true" : "null"); break;
            case 3: builder.Append("-1.5e-3"); break;
            case 4:
                builder.Append('[');
                var items = random.Next(3);
                for (var i = 0; i < items; i++)
                {
                    if (i > 0)
                    {
                        builder.Append(',');
                    }

                    AppendValue(builder, random, depth + 1);
                }

                builder.Append(']');
                break;
            default:
                builder.Append("{\"epoch\":");
                AppendValue(builder, random, depth + 1);
                builder.Append(",\"offset\":");
                AppendValue(builder, random, depth + 1);
                builder.Append('}');
                break;
        }
    }
}
