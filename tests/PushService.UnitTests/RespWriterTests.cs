using System.Buffers;
using System.Text;
using PushService.Broker.Redis.Resp;

namespace PushService.UnitTests;

/// <summary>Commands as Redis reads them: arrays of bulk strings whose lengths count bytes, not characters.</summary>
public sealed class RespWriterTests
{
    [Fact]
    public void ACommand_IsAnArrayOfBulkStrings_WithLengthsInBytes()
    {
        Assert.Equal("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\né\r\n", Encoding.UTF8.GetString(RespWriter.Command("SET", "k", "é")));
    }

    [Fact]
    public void NumbersAndBytes_AreWrittenAsBulkStrings()
    {
        var buffer = new ArrayBufferWriter<byte>(1);
        var writer = new RespWriter(buffer);
        writer.WriteArray(4);
        writer.WriteBulk(-9_223_372_036_854_775_808);
        writer.WriteBulk(0);
        writer.WriteBulk("\r\n"u8);
        writer.WriteBulk([]);

        Assert.Equal("*4\r\n$20\r\n-9223372036854775808\r\n$1\r\n0\r\n$2\r\n\r\n\r\n$0\r\n\r\n", Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    [Fact]
    public void WhatItWrites_ReadsBackAsTheSameParts()
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new RespWriter(buffer);
        var large = new string('x', 100_000);
        writer.WriteArray(3);
        writer.WriteBulk("EVALSHA");
        writer.WriteBulk(large);
        writer.WriteBulk(12345);

        Assert.True(RespFrame.TryRead(buffer.WrittenSpan, out var frame, out var consumed));
        Assert.Equal(buffer.WrittenCount, consumed);
        Assert.Equal(["EVALSHA", large, "12345"], Enumerable.Range(0, 3).Select(i => Encoding.UTF8.GetString(frame.Part(buffer.WrittenSpan, i))));
    }
}
