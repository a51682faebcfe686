using System.Text;
using System.Text.Json;
using PushService.Broker;
using PushService.Gateway.Protocol;

namespace PushService.UnitTests;

public sealed class FrameEncoderTests
{
    [Fact]
    public void Message_IsValidJsonWithDataBytesAsPublished()
    {
        var data = Encoding.UTF8.GetBytes("{\"z\" : [1,  2.50], \"é\":\"\\u0041\"}");
        var frame = FrameEncoder.Message(new Publication("dm#42,77", 9_000_000_001, "ep", data));
        var text = Encoding.UTF8.GetString(frame);
        Assert.Equal("{\"type\":\"message\",\"channel\":\"dm#42,77\",\"offset\":9000000001,\"data\":{\"z\" : [1,  2.50], \"é\":\"\\u0041\"}}", text);
        using var parsed = JsonDocument.Parse(frame);
        Assert.Equal("message", parsed.RootElement.GetProperty("type").GetString());
    }

    [Fact]
    public void Error_EscapesItsMessage()
    {
        var frame = FrameEncoder.Error(5, ErrorCodes.BadRequest, "line\nbreak \"quoted\"");
        Assert.DoesNotContain((byte)'\n', frame);
        using var parsed = JsonDocument.Parse(frame);
        Assert.Equal(5, parsed.RootElement.GetProperty("id").GetInt64());
        Assert.Equal("bad_request", parsed.RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("line\nbreak \"quoted\"", parsed.RootElement.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public void Result_WritesMessagesWithRawData()
    {
        var publications = new[] { new Publication("c", 1, "e", Encoding.UTF8.GetBytes("[1,2]")), new Publication("c", 2, "e", Encoding.UTF8.GetBytes("\"s\"")) };
        var frame = FrameEncoder.Result(3, static (w, p) => FrameEncoder.WriteMessages(w, p), publications);
        Assert.Equal("{\"id\":3,\"result\":{\"messages\":[{\"offset\":1,\"data\":[1,2]},{\"offset\":2,\"data\":\"s\"}]}}", Encoding.UTF8.GetString(frame));
    }

    [Fact]
    public void DisconnectPush_CarriesCodeReasonAndReconnect()
    {
        using var parsed = JsonDocument.Parse(FrameEncoder.DisconnectPush(Disconnect.SlowConsumer));
        Assert.Equal("disconnect", parsed.RootElement.GetProperty("type").GetString());
        Assert.Equal(4500, parsed.RootElement.GetProperty("code").GetInt32());
        Assert.Equal("slow_consumer", parsed.RootElement.GetProperty("reason").GetString());
        Assert.True(parsed.RootElement.GetProperty("reconnect").GetBoolean());
    }
}
