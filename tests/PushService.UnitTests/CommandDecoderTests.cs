using System.Text;
using PushService.Gateway.Protocol;

namespace PushService.UnitTests;

public sealed class CommandDecoderTests
{
    private static Command? Decode(string json, out string? fatal) => CommandDecoder.Decode(Encoding.UTF8.GetBytes(json), out fatal);

    [Fact]
    public void Subscribe_WithSince_DecodesEveryField()
    {
        var command = Decode("""{"op":"subscribe","id":7,"channel":"chat:room","token":"t","since":{"epoch":"e1","offset":42}}""", out var fatal);
        Assert.Null(fatal);
        Assert.NotNull(command);
        Assert.Equal(CommandOp.Subscribe, command.Op);
        Assert.Equal(7, command.Id);
        Assert.Equal("chat:room", command.Channel);
        Assert.Equal("t", command.Token);
        Assert.Equal(new PushService.Broker.StreamPosition(42, "e1"), command.Since);
        Assert.Null(command.FieldError);
    }

    [Fact]
    public void Publish_KeepsDataBytesAsPublished_ExceptRawLineBreaks()
    {
        var command = Decode("{\"op\":\"publish\",\"id\":1,\"channel\":\"c\",\"data\":{\"a\" :\r\n [1, 2.50, \"x\\ny\", \"é\"]}}", out _);
        Assert.NotNull(command);
        Assert.Equal("{\"a\" :   [1, 2.50, \"x\\ny\", \"é\"]}", Encoding.UTF8.GetString(command.Data!));
    }

    [Theory]
    [InlineData("\"text\"")]
    [InlineData("123")]
    [InlineData("null")]
    [InlineData("[1,{\"b\":[]}]")]
    [InlineData("true")]
    public void Publish_AcceptsAnyJsonValueAsData(string data)
    {
        var command = Decode($"{{\"op\":\"publish\",\"id\":1,\"channel\":\"c\",\"data\":{data}}}", out _);
        Assert.Equal(data, Encoding.UTF8.GetString(command!.Data!));
    }

    [Fact]
    public void Pong_NeedsNoId()
    {
        var command = Decode("""{"op":"pong"}""", out var fatal);
        Assert.Null(fatal);
        Assert.Equal(CommandOp.Pong, command!.Op);
    }

    [Fact]
    public void UnknownFields_AreIgnored()
    {
        var command = Decode("""{"op":"ping","id":3,"future":{"nested":[1,2,3]},"x":"y"}""", out var fatal);
        Assert.Null(fatal);
        Assert.Equal(CommandOp.Ping, command!.Op);
    }

    [Theory]
    [InlineData("", "not valid JSON")]
    [InlineData("not json", "not valid JSON")]
    [InlineData("[]", "one JSON object")]
    [InlineData("\"op\"", "one JSON object")]
    [InlineData("{\"op\":\"ping\",\"id\":1", "not valid JSON")]
    [InlineData("{\"op\":\"ping\",\"id\":1}{\"op\":\"ping\",\"id\":2}", "not valid JSON")]
    [InlineData("{\"op\":\"dance\",\"id\":1}", "Unknown op")]
    [InlineData("{\"op\":5,\"id\":1}", "no string 'op'")]
    [InlineData("{\"id\":1}", "no string 'op'")]
    [InlineData("{\"op\":\"ping\"}", "needs an 'id'")]
    [InlineData("{\"op\":\"ping\",\"id\":0}", "positive integer")]
    [InlineData("{\"op\":\"ping\",\"id\":-4}", "positive integer")]
    [InlineData("{\"op\":\"ping\",\"id\":1.5}", "positive integer")]
    [InlineData("{\"op\":\"ping\",\"id\":\"1\"}", "positive integer")]
    [InlineData("{\"op\":\"ping\",\"id\":1,} ", "not valid JSON")]
    [InlineData("{\"op\":\"ping\",\"id\":1} // comment", "not valid JSON")]
    public void MalformedFrames_AreFatal(string json, string expected)
    {
        var command = Decode(json, out var fatal);
        Assert.Null(command);
        Assert.Contains(expected, fatal, StringComparison.Ordinal);
    }

    [Fact]
    public void InvalidUtf8_IsFatal()
    {
        var bytes = Encoding.UTF8.GetBytes("{\"op\":\"publish\",\"id\":1,\"channel\":\"c\",\"data\":\"..\"}");
        bytes[^4] = 0xC3;
        bytes[^3] = 0x28;
        Assert.Null(CommandDecoder.Decode(bytes, out var fatal));
        Assert.Contains("UTF-8", fatal, StringComparison.Ordinal);
    }

    [Fact]
    public void DeeplyNestedData_IsFatalNotAStackOverflow()
    {
        var json = "{\"op\":\"publish\",\"id\":1,\"channel\":\"c\",\"data\":" + new string('[', 100_000) + new string(']', 100_000) + "}";
        Assert.Null(Decode(json, out var fatal));
        Assert.NotNull(fatal);
    }

    [Theory]
    [InlineData("{\"op\":\"subscribe\",\"id\":2,\"channel\":5}", "'channel' must be a string")]
    [InlineData("{\"op\":\"subscribe\",\"id\":2,\"channel\":\"c\",\"since\":3}", "'since'")]
    [InlineData("{\"op\":\"subscribe\",\"id\":2,\"channel\":\"c\",\"since\":{\"epoch\":\"e\"}}", "'since'")]
    [InlineData("{\"op\":\"subscribe\",\"id\":2,\"channel\":\"c\",\"since\":{\"epoch\":1,\"offset\":2}}", "'since'")]
    [InlineData("{\"op\":\"subscribe\",\"id\":2,\"channel\":\"c\",\"since\":{\"epoch\":\"e\",\"offset\":-1}}", "'since'")]
    [InlineData("{\"op\":\"history\",\"id\":2,\"channel\":\"c\",\"limit\":\"ten\"}", "'limit'")]
    [InlineData("{\"op\":\"history\",\"id\":2,\"channel\":\"c\",\"limit\":-1}", "'limit'")]
    [InlineData("{\"op\":\"connect\",\"id\":2,\"token\":{}}", "'token' must be a string")]
    public void WrongFieldTypes_AreReportedOnTheCommand(string json, string expected)
    {
        var command = Decode(json, out var fatal);
        Assert.Null(fatal);
        Assert.NotNull(command);
        Assert.Equal(2, command.Id);
        Assert.Contains(expected, command.FieldError, StringComparison.Ordinal);
    }

    [Fact]
    public void RandomAndMutatedFrames_NeverThrow()
    {
        var random = new Random(12345);
        string[] seeds =
        [
            """{"op":"subscribe","id":1,"channel":"a:b","since":{"epoch":"e","offset":3}}""",
            """{"op":"publish","id":2,"channel":"c","data":{"x":[1,2,{"y":"z"}]}}""",
            """{"op":"connect","id":3,"token":"abc","name":"n","version":"1"}""",
        ];
        for (var i = 0; i < 20_000; i++)
        {
            var bytes = Encoding.UTF8.GetBytes(seeds[i % seeds.Length]);
            var mutations = random.Next(1, 6);
            for (var m = 0; m < mutations; m++)
            {
                bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
            }

            var command = CommandDecoder.Decode(bytes, out var fatal);
            Assert.True(command is not null ^ fatal is not null);
        }
    }
}
