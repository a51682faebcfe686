using System.Buffers;
using System.Text;
using PushService.Gateway.Transport;

namespace PushService.UnitTests;

public sealed class UpgradeRequestTests
{
    private const string Upgrade = "GET /ws HTTP/1.1\r\nHost: push.example.com\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: https://app.example.com\r\n" +
        "Sec-WebSocket-Protocol: chat, push.v1.json\r\n\r\n";

    private static UpgradeRequest.Parse Parse(string text, out UpgradeRequest? request, out long consumed)
    {
        var buffer = new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(text));
        var result = UpgradeRequest.TryParse(buffer, "/ws", out request, out var end);
        consumed = buffer.Slice(buffer.Start, end).Length;
        return result;
    }

    [Fact]
    public void ValidUpgrade_IsParsed_UpToTheEndOfItsHead()
    {
        Assert.Equal(UpgradeRequest.Parse.Upgrade, Parse(Upgrade + "\x81\x80", out var request, out var consumed));
        Assert.Equal(Upgrade.Length, consumed);
        Assert.Equal("push.example.com", request!.Host);
        Assert.Equal("https://app.example.com", request.Origin);
        Assert.True(request.Requests("push.v1.json"));
        Assert.False(request.Requests("push.v2.json"));

        // The example of RFC 6455 section 1.3.
        Assert.Equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", UpgradeRequest.AcceptKey(request.Key));
        var response = Encoding.ASCII.GetString(request.SwitchingProtocolsResponse("push.v1.json"));
        Assert.StartsWith("HTTP/1.1 101 Switching Protocols\r\n", response, StringComparison.Ordinal);
        Assert.Contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", response, StringComparison.Ordinal);
        Assert.Contains("\r\nSec-WebSocket-Protocol: push.v1.json\r\n", response, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\n", response, StringComparison.Ordinal);
    }

    [Fact]
    public void PartialHead_NeedsMoreData_ButAnotherPathIsKnownAtOnce()
    {
        Assert.Equal(UpgradeRequest.Parse.NeedMoreData, Parse(Upgrade[..40], out _, out _));
        Assert.Equal(UpgradeRequest.Parse.NeedMoreData, Parse("GET /w", out _, out _));
        Assert.Equal(UpgradeRequest.Parse.NotOurs, Parse("POST /api/v1/", out _, out _));
        Assert.Equal(UpgradeRequest.Parse.NotOurs, Parse("GET /wss", out _, out _));
        Assert.Equal(UpgradeRequest.Parse.NotOurs, Parse("GET /healthz HTTP/1.1\r\n", out _, out _));
        Assert.Equal(UpgradeRequest.Parse.NotOurs, Parse("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", out _, out _));
    }

    [Theory]
    [InlineData("Upgrade: websocket\r\n", "Upgrade: h2c\r\n")]
    [InlineData("Connection: keep-alive, Upgrade\r\n", "Connection: keep-alive\r\n")]
    [InlineData("Sec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Version: 8\r\n")]
    [InlineData("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=")]
    [InlineData("HTTP/1.1\r\n", "HTTP/1.0\r\n")]
    [InlineData("Origin: https://app.example.com\r\n", "a header without a colon\r\n")]
    public void AnythingButAValidUpgrade_IsLeftToTheHttpPipeline(string part, string replacement)
    {
        Assert.Equal(UpgradeRequest.Parse.NotOurs, Parse(Upgrade.Replace(part, replacement, StringComparison.Ordinal), out var request, out _));
        Assert.Null(request);
    }

    [Fact]
    public void OverlongHead_IsLeftToTheHttpPipeline()
    {
        var longHead = Upgrade.Replace("\r\n\r\n", "\r\nX-Padding: " + new string('a', UpgradeRequest.MaxHeadBytes) + "\r\n\r\n", StringComparison.Ordinal);
        Assert.Equal(UpgradeRequest.Parse.NotOurs, Parse(longHead, out _, out _));
        Assert.Equal(UpgradeRequest.Parse.NotOurs, Parse(longHead[..(UpgradeRequest.MaxHeadBytes + 100)], out _, out _));
    }
}
