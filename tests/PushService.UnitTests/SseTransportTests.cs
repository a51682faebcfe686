using System.IO.Pipelines;
using System.Text;
using PushService.Gateway.Transport;

namespace PushService.UnitTests;

/// <summary>Server-Sent Events: the event id that holds every channel's position, and the events the transport writes.</summary>
public sealed class SseTransportTests
{
    [Fact]
    public void EventId_RoundTrips_ChannelsWithColonsHashesAndCommas()
    {
        var positions = new[]
        {
            new KeyValuePair<string, (string, long)>("news", ("k2x7qv4a", 42)),
            new KeyValuePair<string, (string, long)>("chat:room:1", ("p0m3zz81", 0)),
            new KeyValuePair<string, (string, long)>("dm#42,77", ("abcdefgh", 9_000_000_000)),
        };
        var id = SseEventId.Format(positions);
        Assert.Equal("news:k2x7qv4a:42;chat:room:1:p0m3zz81:0;dm#42,77:abcdefgh:9000000000", id);

        Assert.True(SseEventId.TryParse(id, out var parsed));
        Assert.Equal(positions.ToDictionary(p => p.Key, p => p.Value), parsed);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("42")]
    [InlineData("news:epoch")]
    [InlineData("news::5")]
    [InlineData(":epoch:5")]
    [InlineData("news:epoch:-1")]
    [InlineData("news:epoch:five")]
    [InlineData("news:epoch:5;")]
    [InlineData("news:epoch:5;other")]
    public void EventId_ThatIsNotOurs_ResumesNothing(string? id)
    {
        Assert.False(SseEventId.TryParse(id, out var parsed));
        Assert.Empty(parsed);
    }

    [Fact]
    public async Task Events_CarryEveryChannelsPosition_OnlyWhereAPositionMoves()
    {
        var pipe = new Pipe();
        var unsubscribed = new List<string>();
        var transport = new SseTransport(pipe.Writer, () => { }, unsubscribed.Add);
        transport.WriteRetry(TimeSpan.FromMilliseconds(1500));

        // A subscribe result: several objects on separate lines, one event each.
        Write(transport,
            """{"type":"subscribed","channel":"a","epoch":"eeeeeeee","offset":4,"recovered":true}""" + "\n"
            + """{"type":"message","channel":"a","offset":5,"data":{"n":5}}""",
            """{"type":"subscribed","channel":"b:x","epoch":"ffffffff","offset":0,"recovered":false}""");
        Write(transport,
            """{"type":"message","channel":"b:x","offset":1,"data":"line"}""",
            """{"type":"join","channel":"a","client":"c1","user":"u"}""",
            ": ping",
            """{"type":"message","channel":"unknown","offset":9,"data":1}""",
            """{"type":"unsubscribed","channel":"a","reason":"resubscribe"}""");
        transport.WriteClose(1001, "going_away", """{"type":"disconnect","code":1001,"reason":"going_away","reconnect":true}"""u8);
        await transport.FlushAsync();
        await pipe.Writer.CompleteAsync();

        var read = await pipe.Reader.ReadAsync();
        var text = Encoding.UTF8.GetString(System.Buffers.BuffersExtensions.ToArray(read.Buffer));
        Assert.Equal(
            "retry: 1500\n\n"
            + "id: a:eeeeeeee:4\ndata: {\"type\":\"subscribed\",\"channel\":\"a\",\"epoch\":\"eeeeeeee\",\"offset\":4,\"recovered\":true}\n\n"
            + "id: a:eeeeeeee:5\ndata: {\"type\":\"message\",\"channel\":\"a\",\"offset\":5,\"data\":{\"n\":5}}\n\n"
            + "id: a:eeeeeeee:5;b:x:ffffffff:0\ndata: {\"type\":\"subscribed\",\"channel\":\"b:x\",\"epoch\":\"ffffffff\",\"offset\":0,\"recovered\":false}\n\n"
            + "id: a:eeeeeeee:5;b:x:ffffffff:1\ndata: {\"type\":\"message\",\"channel\":\"b:x\",\"offset\":1,\"data\":\"line\"}\n\n"
            + "data: {\"type\":\"join\",\"channel\":\"a\",\"client\":\"c1\",\"user\":\"u\"}\n\n"
            + ": ping\n\n"
            + "data: {\"type\":\"message\",\"channel\":\"unknown\",\"offset\":9,\"data\":1}\n\n"
            + "data: {\"type\":\"unsubscribed\",\"channel\":\"a\",\"reason\":\"resubscribe\"}\n\n"
            + "data: {\"type\":\"disconnect\",\"code\":1001,\"reason\":\"going_away\",\"reconnect\":true}\n\n",
            text);
        Assert.Equal("a:eeeeeeee:5;b:x:ffffffff:1", transport.LastEventId);
        Assert.Equal(["a"], unsubscribed);
    }

    [Fact]
    public async Task AResumedStream_KeepsWhereTheClientStood_UntilEachChannelIsWritten()
    {
        var pipe = new Pipe();
        var transport = new SseTransport(pipe.Writer, () => { }, _ => { });
        transport.Resume([new("a", ("eeeeeeee", 7)), new("b", ("ffffffff", 3))]);
        Write(transport, """{"type":"subscribed","channel":"a","epoch":"eeeeeeee","offset":7,"recovered":true}""");
        await transport.FlushAsync();

        // The first event's id still holds b where the client left it, though b is not subscribed yet.
        Assert.Equal("a:eeeeeeee:7;b:ffffffff:3", transport.LastEventId);
    }

    [Fact]
    public void Read_TakesTheHeadOfAPush_AndStopsAtItsData()
    {
        Assert.Equal(("message", "a", null, 12L), SseTransport.Read("""{"type":"message","channel":"a","offset":12,"data":{"offset":99,"channel":"x"}}"""u8));
        Assert.Equal(("reset", "a", "e", 3L), SseTransport.Read("""{"type":"reset","channel":"a","epoch":"e","offset":3}"""u8));
        Assert.Equal((null, null, null, -1L), SseTransport.Read("""not json"""u8));
        Assert.Equal(("ping", null, null, -1L), SseTransport.Read("""{"type":"ping"}"""u8));
    }

    private static void Write(SseTransport transport, params string[] pushes)
    {
        var frames = pushes.Select(p => (ReadOnlyMemory<byte>)Encoding.UTF8.GetBytes(p)).ToArray();
        transport.WriteMessage(frames, frames.Sum(f => f.Length));
    }
}
