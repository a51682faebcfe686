using System.Buffers.Text;

namespace PushService.Broker.Redis.Resp;

/// <summary>The kinds of RESP2 reply the broker's own connections get.</summary>
internal enum RespKind
{
    /// <summary><c>+OK</c>: the reply to <c>AUTH</c>, <c>SELECT</c> and <c>CLIENT SETNAME</c>.</summary>
    Simple,

    /// <summary><c>-ERR …</c>.</summary>
    Error,

    /// <summary>A bulk string on its own: the reply to <c>SCRIPT LOAD</c>.</summary>
    Bulk,

    /// <summary>An array of bulk strings and integers: a push (<c>message</c>), a confirmation (<c>subscribe</c>) or the publish
    /// script's result.</summary>
    Array,
}

/// <summary>
/// One RESP2 reply read from a connection's buffer: where its parts lie in that buffer, valid until the buffer is read
/// into again. Only what the broker's own connections receive is understood: simple strings, errors, bulk strings and
/// arrays of up to <see cref="MaxParts"/> bulk strings or integers (a push, a confirmation and the publish script's result
/// have three).
/// </summary>
internal readonly struct RespFrame
{
    /// <summary>The most parts an array may have here.</summary>
    public const int MaxParts = 4;

    private readonly (int Start, int Length) _p0, _p1, _p2, _p3;

    private RespFrame(RespKind kind, int count, (int, int) p0, (int, int) p1, (int, int) p2, (int, int) p3)
    {
        Kind = kind;
        Count = count;
        (_p0, _p1, _p2, _p3) = (p0, p1, p2, p3);
    }

    public RespKind Kind { get; }

    /// <summary>The parts of an array; 1 for a simple string, an error (its text) or a bulk string.</summary>
    public int Count { get; }

    /// <summary>Part <paramref name="index"/>: a bulk string's bytes or an integer's digits.</summary>
    public ReadOnlySpan<byte> Part(ReadOnlySpan<byte> buffer, int index)
    {
        var (start, length) = index switch { 0 => _p0, 1 => _p1, 2 => _p2, 3 => _p3, _ => throw new ArgumentOutOfRangeException(nameof(index)) };
        return buffer.Slice(start, length);
    }

    /// <inheritdoc cref="Part(ReadOnlySpan{byte}, int)"/>
    public ReadOnlyMemory<byte> Part(ReadOnlyMemory<byte> buffer, int index)
    {
        var (start, length) = index switch { 0 => _p0, 1 => _p1, 2 => _p2, 3 => _p3, _ => throw new ArgumentOutOfRangeException(nameof(index)) };
        return buffer.Slice(start, length);
    }

    /// <summary>
    /// Reads the reply at the start of <paramref name="buffer"/>. False when it is not all there yet (read more and try
    /// again); throws <see cref="FormatException"/> on bytes that are not a reply this connection can get.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> buffer, out RespFrame frame, out int consumed)
    {
        frame = default;
        consumed = 0;
        if (!TryReadLine(buffer, 0, out var line, out var next))
        {
            return false;
        }

        switch (buffer[0])
        {
            case (byte)'+':
                frame = new RespFrame(RespKind.Simple, 1, (1, line - 1), default, default, default);
                consumed = next;
                return true;
            case (byte)'-':
                frame = new RespFrame(RespKind.Error, 1, (1, line - 1), default, default, default);
                consumed = next;
                return true;
            case (byte)'$':
                if (!TryReadBulk(buffer, 0, line, next, out var bulk, out consumed))
                {
                    return false;
                }

                frame = new RespFrame(RespKind.Bulk, 1, bulk, default, default, default);
                return true;
            case (byte)'*':
                break;
            default:
                throw new FormatException($"Unexpected reply type '{(char)buffer[0]}' on the broker's own connection.");
        }

        var count = ParseNumber(buffer.Slice(1, line - 1));
        if (count is < 0 or > MaxParts)
        {
            throw new FormatException($"Unexpected array of {count} parts on the broker's own connection.");
        }

        Span<(int, int)> parts = stackalloc (int, int)[MaxParts];
        var at = next;
        for (var i = 0; i < count; i++)
        {
            if (!TryReadLine(buffer, at, out line, out next))
            {
                return false;
            }

            switch (buffer[at])
            {
                case (byte)':':
                    parts[i] = (at + 1, line - 1);
                    at = next;
                    break;
                case (byte)'$':
                    if (!TryReadBulk(buffer, at, line, next, out parts[i], out at))
                    {
                        return false;
                    }

                    break;
                default:
                    throw new FormatException($"Unexpected array part type '{(char)buffer[at]}' on the broker's own connection.");
            }
        }

        frame = new RespFrame(RespKind.Array, count, parts[0], parts[1], parts[2], parts[3]);
        consumed = at;
        return true;
    }

    /// <summary>The bulk string whose header line starts at <paramref name="start"/>: where its bytes lie, and where what follows begins.</summary>
    private static bool TryReadBulk(ReadOnlySpan<byte> buffer, int start, int line, int next, out (int, int) part, out int end)
    {
        part = default;
        end = 0;
        var length = ParseNumber(buffer.Slice(start + 1, line - 1));
        if (length < 0)
        {
            throw new FormatException("Unexpected null bulk string on the broker's own connection.");
        }

        if (buffer.Length < next + length + 2)
        {
            return false;
        }

        if (buffer[next + length] != '\r' || buffer[next + length + 1] != '\n')
        {
            throw new FormatException("A bulk string did not end where its length said.");
        }

        part = (next, length);
        end = next + length + 2;
        return true;
    }

    /// <summary>The line starting at <paramref name="start"/>: its length without CRLF, and where the next begins.</summary>
    private static bool TryReadLine(ReadOnlySpan<byte> buffer, int start, out int length, out int next)
    {
        var end = buffer[start..].IndexOf("\r\n"u8);
        length = end;
        next = start + end + 2;
        return end >= 0;
    }

    private static int ParseNumber(ReadOnlySpan<byte> digits) =>
        Utf8Parser.TryParse(digits, out int value, out var used) && used == digits.Length
            ? value
            : throw new FormatException("A length or count was not a number.");
}
