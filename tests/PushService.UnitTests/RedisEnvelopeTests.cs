using System.Text;
using PushService.Broker.Redis;

namespace PushService.UnitTests;

/// <summary>Decoding what a channel's pub/sub message carries, as the Lua publish script writes it.</summary>
public sealed class RedisEnvelopeTests
{
    private static ReadOnlyMemory<byte> Envelope(long offset, string epoch, string trace, string data) =>
        Encoding.UTF8.GetBytes($"m\n{offset}\n{epoch}\n{trace}\n{data}");

    [Fact]
    public void APublication_DecodesItsOffsetEpochTraceAndData()
    {
        Assert.True(RedisEnvelope.TryReadPublication("news", Envelope(42, "k3j9x0qa", "00-trace-01", "{\"a\":1}\nsecond line"), null, out var publication));

        Assert.Equal("news", publication!.Channel);
        Assert.Equal(42, publication.Offset);
        Assert.Equal("k3j9x0qa", publication.Epoch);
        Assert.Equal("00-trace-01", publication.TraceParent);
        Assert.Equal("{\"a\":1}\nsecond line", Encoding.UTF8.GetString(publication.Data.Span));
    }

    [Theory]
    [InlineData("00-trace-01", 0L, "00-trace-01")]
    [InlineData(null, 0L, "")]
    [InlineData("00-trace-01", 639000000000000000L, "639000000000000000 00-trace-01")]
    [InlineData(null, 639000000000000000L, "639000000000000000")]
    public void APublicationTheBrokerAnnounces_IsByteForByteWhatTheScriptWrites(string? trace, long accepted, string context)
    {
        // Where replicas must acknowledge a publication first, the broker publishes its envelope itself, with the context
        // field the publish command hands the script.
        Assert.Equal(context, RedisEnvelope.Context(trace, accepted));
        var made = RedisEnvelope.Publication(42, "k3j9x0qa", RedisEnvelope.Context(trace, accepted), "{\"a\":1}"u8);
        Assert.Equal(Envelope(42, "k3j9x0qa", context, "{\"a\":1}").ToArray(), made);
        Assert.True(RedisEnvelope.TryReadPublication("news", made, null, out var publication));
        Assert.Equal(trace, publication!.TraceParent);
        Assert.Equal(accepted, publication.AcceptedAtTicks);
    }

    [Fact]
    public void AContextWithATraceParentOnly_FromTheReleaseBefore_HasNoAcceptedTime()
    {
        Assert.True(RedisEnvelope.TryReadPublication("news", Envelope(3, "k3j9x0qa", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "1"), null, out var publication));
        Assert.Equal("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", publication!.TraceParent);
        Assert.Equal(0, publication.AcceptedAtTicks);
    }

    [Fact]
    public void TheChannelsKnownEpoch_IsReusedWhenItMatches_AndNotWhenItDoesNot()
    {
        var known = new string("k3j9x0qa".AsSpan());

        Assert.True(RedisEnvelope.TryReadPublication("news", Envelope(7, "k3j9x0qa", "", "x"), known, out var same));
        Assert.Same(known, same!.Epoch);
        Assert.Null(same.TraceParent);

        Assert.True(RedisEnvelope.TryReadPublication("news", Envelope(1, "zz00zz00", "", "x"), known, out var reset));
        Assert.Equal("zz00zz00", reset!.Epoch);
        Assert.NotSame(known, reset.Epoch);
    }

    [Theory]
    [InlineData("")]
    [InlineData("m")]
    [InlineData("m\nnot-a-number\nepoch\n\ndata")]
    [InlineData("m\n12")]
    [InlineData("m\n12\nepoch-without-end")]
    [InlineData("j\nclient\nuser")]
    public void AnythingElse_IsNotAPublication(string payload)
    {
        Assert.False(RedisEnvelope.TryReadPublication("news", Encoding.UTF8.GetBytes(payload), "epoch", out var publication));
        Assert.Null(publication);
    }
}
