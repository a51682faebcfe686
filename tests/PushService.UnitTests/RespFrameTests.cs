using System.Text;
using PushService.Broker.Redis.Resp;

namespace PushService.UnitTests;

/// <summary>
/// The replies the broker's own connections read: pushes, confirmations, the publish script's result and a loaded
/// script's SHA, whole, in pieces and back to back; errors and bytes that are no reply they can get.
/// </summary>
public sealed class RespFrameTests
{
    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    private static string Text(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes);

    [Fact]
    public void AMessagePush_GivesItsChannelAndPayload()
    {
        var buffer = Bytes("*3\r\n$7\r\nmessage\r\n$5\r\nps:ch\r\n$10\r\n{\"a\":\"\r\n\"}\r\n");

        Assert.True(RespFrame.TryRead(buffer, out var frame, out var consumed));

        Assert.Equal(buffer.Length, consumed);
        Assert.Equal(RespKind.Array, frame.Kind);
        Assert.Equal(3, frame.Count);
        Assert.Equal("message", Text(frame.Part(buffer, 0)));
        Assert.Equal("ps:ch", Text(frame.Part(buffer, 1)));
        Assert.Equal("{\"a\":\"\r\n\"}", Text(frame.Part(buffer, 2)));
    }

    [Fact]
    public void AConfirmation_AndAnOk_AndAnError_ReadOneAfterAnother()
    {
        var buffer = Bytes("+OK\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n-ERR invalid password\r\n");
        var at = 0;

        Assert.True(RespFrame.TryRead(buffer.AsSpan(at), out var ok, out var consumed));
        Assert.Equal((RespKind.Simple, "OK"), (ok.Kind, Text(ok.Part(buffer.AsSpan(at), 0))));
        at += consumed;

        Assert.True(RespFrame.TryRead(buffer.AsSpan(at), out var confirmation, out consumed));
        Assert.Equal("subscribe", Text(confirmation.Part(buffer.AsSpan(at), 0)));
        Assert.Equal("1", Text(confirmation.Part(buffer.AsSpan(at), 2)));
        at += consumed;

        Assert.True(RespFrame.TryRead(buffer.AsSpan(at), out var error, out consumed));
        Assert.Equal((RespKind.Error, "ERR invalid password"), (error.Kind, Text(error.Part(buffer.AsSpan(at), 0))));
        Assert.Equal(buffer.Length, at + consumed);
    }

    [Fact]
    public void APublishResult_AndALoadedScriptsSha_ReadOneAfterTheOther()
    {
        var buffer = Bytes("*3\r\n:1\r\n:42\r\n$5\r\nepoch\r\n$3\r\nabc\r\n*1\r\n:-1\r\n");
        var at = 0;

        Assert.True(RespFrame.TryRead(buffer.AsSpan(at), out var result, out var consumed));
        Assert.Equal((RespKind.Array, 3), (result.Kind, result.Count));
        Assert.Equal(["1", "42", "epoch"], Enumerable.Range(0, 3).Select(i => Text(result.Part(buffer.AsSpan(at), i))));
        at += consumed;

        Assert.True(RespFrame.TryRead(buffer.AsSpan(at), out var sha, out consumed));
        Assert.Equal((RespKind.Bulk, "abc"), (sha.Kind, Text(sha.Part(buffer.AsSpan(at), 0))));
        at += consumed;

        Assert.True(RespFrame.TryRead(buffer.AsSpan(at), out var conflict, out consumed));
        Assert.Equal((RespKind.Array, 1, "-1"), (conflict.Kind, conflict.Count, Text(conflict.Part(buffer.AsSpan(at), 0))));
        Assert.Equal(buffer.Length, at + consumed);
    }

    [Theory]
    [InlineData("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$4\r\ndata\r\n")]
    [InlineData("$40\r\n0123456789012345678901234567890123456789\r\n")]
    [InlineData("*3\r\n:1\r\n:42\r\n$5\r\nepoch\r\n")]
    public void EveryCutShortOfTheWholeReply_AsksForMore(string text)
    {
        var whole = Bytes(text);
        for (var length = 0; length < whole.Length; length++)
        {
            Assert.False(RespFrame.TryRead(whole.AsSpan(0, length), out _, out _), $"a reply cut at {length} bytes was read");
        }

        Assert.True(RespFrame.TryRead(whole, out _, out var consumed));
        Assert.Equal(whole.Length, consumed);
    }

    [Fact]
    public void APayloadLargerThanAReadBuffer_IsReadWhole()
    {
        var payload = new string('x', 200_000);
        var buffer = Bytes($"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n${payload.Length}\r\n{payload}\r\n");

        Assert.True(RespFrame.TryRead(buffer, out var frame, out _));

        Assert.Equal(payload.Length, frame.Part(buffer, 2).Length);
    }

    [Theory]
    [InlineData("$3\r\nabcd\r\n")]
    [InlineData("$-1\r\n")]
    [InlineData("*9\r\n")]
    [InlineData("*1\r\n$x\r\n")]
    [InlineData("*1\r\n$3\r\nabcd\r\n")]
    [InlineData("*1\r\n$-1\r\n")]
    [InlineData("*1\r\n*1\r\n")]
    public void BytesThatAreNoReplyItCanGet_AreRefused(string text)
    {
        Assert.Throws<FormatException>(() => RespFrame.TryRead(Bytes(text), out _, out _));
    }
}
