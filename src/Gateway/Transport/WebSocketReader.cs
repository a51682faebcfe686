using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Text.Unicode;

namespace PushService.Gateway.Transport;

/// <summary>What <see cref="WebSocketReader.Read"/> found.</summary>
internal enum WebSocketReadResult
{
    /// <summary>Nothing complete yet: read more from the transport.</summary>
    NeedMoreData,

    /// <summary>A whole data message: <see cref="WebSocketReader.Message"/>, until <see cref="WebSocketReader.ReleaseMessage"/>.</summary>
    Message,

    /// <summary>A ping; its payload is <see cref="WebSocketReader.ControlPayload"/>, to be echoed in a pong.</summary>
    Ping,

    /// <summary>A pong (unsolicited ones are allowed and ignored).</summary>
    Pong,

    /// <summary>The client's close frame: nothing may follow it.</summary>
    Close,

    /// <summary>A frame RFC 6455 forbids: the connection fails with 1002.</summary>
    ProtocolError,

    /// <summary>A text message that is not UTF-8: the connection fails with 1007.</summary>
    InvalidUtf8,
}

/// <summary>
/// Reads client frames (RFC 6455 section 5) off the transport and puts data messages back together. Payloads are
/// unmasked into a pooled buffer that is rented when a message starts and returned once it has been handled, so an idle
/// connection holds no receive memory. A message over the size limit is read on and discarded, then reported with
/// <see cref="MessageTooLarge"/>. Not thread-safe: one receive loop owns it.
/// </summary>
internal sealed class WebSocketReader : IDisposable
{
    private readonly int _maxMessageBytes;

    // The frame being read.
    private bool _inFrame;
    private bool _frameFin;
    private long _frameRemaining;
    private uint _mask;
    private int _maskOffset;

    // The data message being put together; Continuation when none is.
    private WebSocketOpcode _messageType;
    private byte[]? _message;
    private int _messageLength;
    private bool _messageTooLarge;

    // Rented on the first control frame: most clients never send one.
    private byte[]? _control;
    private int _controlLength;

    public WebSocketReader(int maxMessageBytes) => _maxMessageBytes = maxMessageBytes;

    /// <summary>The whole message of the last <see cref="WebSocketReadResult.Message"/>.</summary>
    public ReadOnlyMemory<byte> Message => _message.AsMemory(0, _messageLength);

    /// <summary>Text or binary, for the last message.</summary>
    public WebSocketOpcode MessageType { get; private set; }

    /// <summary>The last message was over the size limit; its bytes were dropped.</summary>
    public bool MessageTooLarge { get; private set; }

    /// <summary>The payload of the last ping or close frame.</summary>
    public ReadOnlySpan<byte> ControlPayload => _control.AsSpan(0, _controlLength);

    /// <summary>Why the last <see cref="WebSocketReadResult.ProtocolError"/> was one.</summary>
    public string? Error { get; private set; }

    /// <summary>Reads from <paramref name="buffer"/>, slicing off what it consumed, up to the first complete event.</summary>
    public WebSocketReadResult Read(ref ReadOnlySequence<byte> buffer)
    {
        while (true)
        {
            if (!_inFrame)
            {
                var header = ReadHeader(ref buffer);
                if (header != WebSocketReadResult.Message)
                {
                    // A whole control frame, an error, or not enough bytes for the next header yet.
                    return header;
                }
            }

            if (_frameRemaining > 0 && buffer.Length > 0)
            {
                var take = (int)Math.Min(_frameRemaining, buffer.Length);
                Append(buffer.Slice(0, take));
                buffer = buffer.Slice(take);
                _frameRemaining -= take;
            }

            if (_frameRemaining > 0)
            {
                return WebSocketReadResult.NeedMoreData;
            }

            _inFrame = false;
            if (!_frameFin)
            {
                continue;
            }

            MessageType = _messageType;
            MessageTooLarge = _messageTooLarge;
            _messageType = WebSocketOpcode.Continuation;
            if (MessageType == WebSocketOpcode.Text && !MessageTooLarge && !Utf8.IsValid(Message.Span))
            {
                return WebSocketReadResult.InvalidUtf8;
            }

            return WebSocketReadResult.Message;
        }
    }

    /// <summary>
    /// Gives the message buffer back to the pool; call once the message has been handled. Does nothing while a message is
    /// being put together (a control frame can arrive between its fragments).
    /// </summary>
    public void ReleaseMessage()
    {
        if (_messageType == WebSocketOpcode.Continuation)
        {
            ReturnBuffer();
        }
    }

    public void Dispose() => ReturnBuffer();

    private void ReturnBuffer()
    {
        if (_message is { } message)
        {
            _message = null;
            ArrayPool<byte>.Shared.Return(message);
        }

        _messageLength = 0;
    }

    /// <summary>
    /// Reads the next frame header. Returns <see cref="WebSocketReadResult.Message"/> when a data frame starts (its payload
    /// follows), the event for a complete control frame, an error, or <see cref="WebSocketReadResult.NeedMoreData"/>.
    /// </summary>
    private WebSocketReadResult ReadHeader(ref ReadOnlySequence<byte> buffer)
    {
        if (buffer.Length < 2)
        {
            return WebSocketReadResult.NeedMoreData;
        }

        Span<byte> header = stackalloc byte[14];
        var available = (int)Math.Min(header.Length, buffer.Length);
        buffer.Slice(0, available).CopyTo(header);
        var fin = (header[0] & 0x80) != 0;
        var opcode = (WebSocketOpcode)(header[0] & 0x0F);
        if ((header[0] & 0x70) != 0)
        {
            return Fail("reserved bits set without a negotiated extension");
        }

        if ((header[1] & 0x80) == 0)
        {
            return Fail("client frames must be masked");
        }

        long length = header[1] & 0x7F;
        var headerLength = 6;
        if (length == 126)
        {
            headerLength = 8;
            if (available < headerLength)
            {
                return WebSocketReadResult.NeedMoreData;
            }

            length = BinaryPrimitives.ReadUInt16BigEndian(header[2..]);
        }
        else if (length == 127)
        {
            headerLength = 14;
            if (available < headerLength)
            {
                return WebSocketReadResult.NeedMoreData;
            }

            var wide = BinaryPrimitives.ReadUInt64BigEndian(header[2..]);
            if (wide > long.MaxValue)
            {
                return Fail("payload length out of range");
            }

            length = (long)wide;
        }

        if (available < headerLength)
        {
            return WebSocketReadResult.NeedMoreData;
        }

        var mask = BinaryPrimitives.ReadUInt32LittleEndian(header[(headerLength - 4)..]);
        switch (opcode)
        {
            case WebSocketOpcode.Close or WebSocketOpcode.Ping or WebSocketOpcode.Pong:
                if (!fin || length > WebSocketFrames.MaxControlPayload)
                {
                    return Fail("control frames must be whole and at most 125 bytes");
                }

                if (buffer.Length < headerLength + length)
                {
                    return WebSocketReadResult.NeedMoreData;
                }

                _controlLength = (int)length;
                _control ??= new byte[WebSocketFrames.MaxControlPayload];
                buffer.Slice(headerLength, length).CopyTo(_control);
                Unmask(_control.AsSpan(0, _controlLength), mask, 0);
                buffer = buffer.Slice(headerLength + length);
                return opcode switch
                {
                    WebSocketOpcode.Ping => WebSocketReadResult.Ping,
                    WebSocketOpcode.Pong => WebSocketReadResult.Pong,
                    _ => ValidateClose(),
                };

            case WebSocketOpcode.Continuation:
                if (_messageType == WebSocketOpcode.Continuation)
                {
                    return Fail("continuation frame without a message to continue");
                }

                break;

            case WebSocketOpcode.Text or WebSocketOpcode.Binary:
                if (_messageType != WebSocketOpcode.Continuation)
                {
                    return Fail("new message before the previous one ended");
                }

                _messageType = opcode;
                _messageTooLarge = false;
                _messageLength = 0;
                break;

            default:
                return Fail("unknown opcode");
        }

        _inFrame = true;
        _frameFin = fin;
        _frameRemaining = length;
        _mask = mask;
        _maskOffset = 0;
        buffer = buffer.Slice(headerLength);
        return WebSocketReadResult.Message;
    }

    private WebSocketReadResult ValidateClose()
    {
        // Section 5.5.1: empty, or a two-byte code and a UTF-8 reason.
        if (_controlLength == 1 || (_controlLength > 2 && !Utf8.IsValid(_control.AsSpan(2, _controlLength - 2))))
        {
            return Fail("malformed close frame");
        }

        return WebSocketReadResult.Close;
    }

    private WebSocketReadResult Fail(string error)
    {
        Error = error;
        return WebSocketReadResult.ProtocolError;
    }

    private void Append(ReadOnlySequence<byte> payload)
    {
        var length = (int)payload.Length;
        if (!_messageTooLarge && (long)_messageLength + length > _maxMessageBytes)
        {
            _messageTooLarge = true;
            ReturnBuffer();
        }

        if (!_messageTooLarge)
        {
            EnsureCapacity(_messageLength + length);
            var destination = _message.AsSpan(_messageLength, length);
            payload.CopyTo(destination);
            Unmask(destination, _mask, _maskOffset);
            _messageLength += length;
        }

        _maskOffset = (_maskOffset + length) & 3;
    }

    private void EnsureCapacity(int needed)
    {
        if (_message is not null && _message.Length >= needed)
        {
            return;
        }

        var larger = ArrayPool<byte>.Shared.Rent(Math.Min(Math.Max(needed, Math.Max(256, (_message?.Length ?? 0) * 2)), _maxMessageBytes));
        if (_message is { } old)
        {
            old.AsSpan(0, _messageLength).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(old);
        }

        _message = larger;
    }

    private static void Unmask(Span<byte> data, uint mask, int offset)
    {
        // The mask was read little-endian, so byte i of the key is (mask >> 8 * i).
        var rotated = BitOperations.RotateRight(mask, offset * 8);
        var i = 0;
        for (; i + 4 <= data.Length; i += 4)
        {
            var word = BinaryPrimitives.ReadUInt32LittleEndian(data[i..]);
            BinaryPrimitives.WriteUInt32LittleEndian(data[i..], word ^ rotated);
        }

        for (; i < data.Length; i++)
        {
            data[i] ^= (byte)(rotated >> (8 * (i & 3)));
        }
    }
}
