using System.Net;
using System.Net.WebSockets;
using System.Text;
using PushService.FunctionalTests.Infrastructure;
using PushService.Testing;

namespace PushService.FunctionalTests;

/// <summary>Every error reply and close code of contract v1 that bad input can cause, and that the node stays up.</summary>
public sealed class ErrorAndCloseCodeTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public Task InitializeAsync()
    {
        _host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:Limits:MaxMessageBytes"] = "4096",
            ["PushService:Limits:MaxChannelsPerConnection"] = "3",
            ["PushService:Limits:ConnectTimeout"] = "00:00:01",
            ["PushService:Namespaces:chat:HistorySize"] = "10",
        });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private async Task AssertClosedWithAsync(TestClient client, int code, string reason)
    {
        var push = await client.NextPushAsync();
        Assert.Equal("disconnect", push.GetProperty("type").GetString());
        Assert.Equal(code, push.GetProperty("code").GetInt32());
        Assert.Equal(reason, push.GetProperty("reason").GetString());
        var (closeCode, closeReason) = await client.ClosedAsync();
        Assert.Equal(code, closeCode);
        Assert.Equal(reason, closeReason);
    }

    [Theory]
    [InlineData("this is not json")]
    [InlineData("{\"op\":\"dance\",\"id\":1}")]
    [InlineData("[1,2,3]")]
    [InlineData("{\"op\":\"subscribe\",\"channel\":\"no-id\"}")]
    [InlineData("{\"op\":\"ping\",\"id\":1}\n{\"op\":\"ping\",\"id\":2}")]
    public async Task MalformedOrUnknownCommand_ClosesWith4000(string frame)
    {
        await using var client = await _host.ConnectAsync();
        await client.SendRawAsync(frame);
        await AssertClosedWithAsync(client, 4000, "bad_request");
    }

    [Fact]
    public async Task BinaryFrame_ClosesWith4000()
    {
        await using var client = await _host.ConnectAsync();
        await client.SendRawAsync(Encoding.UTF8.GetBytes("{\"op\":\"ping\",\"id\":1}"), WebSocketMessageType.Binary);
        await AssertClosedWithAsync(client, 4000, "bad_request");
    }

    [Fact]
    public async Task InvalidUtf8TextFrame_EndsThatConnectionOnly()
    {
        await using var bystander = await _host.ConnectAsync();
        await using var client = await _host.ConnectAsync();
        var bytes = Encoding.UTF8.GetBytes("{\"op\":\"ping\",\"id\":1,\"x\":\"..\"}");
        bytes[^4] = 0xFF;
        await client.SendRawAsync(bytes, WebSocketMessageType.Text);

        // The WebSocket layer rejects it as a protocol error (RFC 6455: 1007) before any command is decoded.
        var (code, _) = await client.ClosedAsync();
        Assert.NotEqual(1000, code);
        Assert.Equal("{}", (await bystander.ResultAsync(new { op = "ping" })).GetRawText());
    }

    [Fact]
    public async Task FrameOverTheLimit_ClosesWith4009()
    {
        await using var client = await _host.ConnectAsync();
        var data = new string('x', 5000);
        await client.SendRawAsync($"{{\"op\":\"publish\",\"id\":1,\"channel\":\"c\",\"data\":\"{data}\"}}");
        await AssertClosedWithAsync(client, 4009, "message_too_large");
    }

    [Fact]
    public async Task RestBodyOverTheLimit_Is413ProblemDetails()
    {
        using var response = await _host.PostPublishAsync("big", $"\"{new string('x', 5000)}\"");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task CommandBeforeConnect_ClosesWith4001()
    {
        await using var client = await _host.ConnectAsync(connect: false);
        await client.SendRawAsync("{\"op\":\"subscribe\",\"id\":1,\"channel\":\"news\"}");
        await AssertClosedWithAsync(client, 4001, "unauthorized");
    }

    [Fact]
    public async Task NoConnectWithinTimeout_ClosesWith4001()
    {
        await using var client = await _host.ConnectAsync(connect: false);
        await AssertClosedWithAsync(client, 4001, "unauthorized");
    }

    [Fact]
    public async Task SecondConnect_IsBadRequest()
    {
        await using var client = await _host.ConnectAsync();
        Assert.Equal("bad_request", await client.ErrorCodeAsync(new { op = "connect" }));
    }

    [Fact]
    public async Task SubscribeErrors_HaveTheirCodes()
    {
        await using var client = await _host.ConnectAsync();
        Assert.Equal("bad_request", await client.ErrorCodeAsync(new { op = "subscribe", channel = "bad name" }));
        Assert.Equal("bad_request", await client.ErrorCodeAsync(new { op = "subscribe", channel = new string('a', 256) }));
        Assert.Equal("bad_request", await client.ErrorCodeAsync(new { op = "subscribe" }));
        Assert.Equal("bad_request", await client.ErrorCodeAsync(new { op = "subscribe", channel = 42 }));
        Assert.Equal("not_found", await client.ErrorCodeAsync(new { op = "subscribe", channel = "nope:room" }));
        Assert.Equal("permission_denied", await client.ErrorCodeAsync(new { op = "subscribe", channel = "notifications#42" }));

        await client.ResultAsync(new { op = "subscribe", channel = "one" });
        Assert.Equal("already_subscribed", await client.ErrorCodeAsync(new { op = "subscribe", channel = "one" }));
        await client.ResultAsync(new { op = "subscribe", channel = "two" });
        await client.ResultAsync(new { op = "subscribe", channel = "chat:three" });
        Assert.Equal("limit_exceeded", await client.ErrorCodeAsync(new { op = "subscribe", channel = "four" }));

        // Errors never close the connection.
        await client.ResultAsync(new { op = "ping" });
    }

    [Fact]
    public async Task HostileFrames_LeaveOtherClientsReceiving()
    {
        await using var good = await _host.ConnectAsync();
        await good.ResultAsync(new { op = "subscribe", channel = "steady" });

        string[] hostile =
        [
            "{", "}", "null", "{\"op\":null,\"id\":1}", new string('[', 5000), "{\"op\":\"subscribe\",\"id\":1,\"since\":{\"epoch\":[],\"offset\":{}}}",
            "{\"op\":\"history\",\"id\":1,\"channel\":\"c\",\"limit\":99999999999}", "\u0000\u0001",
        ];
        var published = 0;
        foreach (var frame in hostile)
        {
            await using var bad = await _host.ConnectAsync();
            await bad.SendRawAsync(frame);
            await _host.PublishAsync("steady", (++published).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var messages = await good.MessagesAsync("steady", published);
        Assert.Equal(Enumerable.Range(1, published), messages.Select(m => m.GetProperty("data").GetInt32()));
        Assert.Equal("ok", await _host.Http.GetStringAsync("/healthz"));
    }

    [Fact]
    public async Task RestErrors_AreProblemDetails()
    {
        using var badChannel = await _host.PostPublishAsync("bad name", "1");
        Assert.Equal(HttpStatusCode.BadRequest, badChannel.StatusCode);
        Assert.Equal("application/problem+json", badChannel.Content.Headers.ContentType?.MediaType);

        using var unknownNs = await _host.PostPublishAsync("nope:x", "1");
        Assert.Equal(HttpStatusCode.NotFound, unknownNs.StatusCode);

        foreach (var body in new[] { "", "[]", "{\"nodata\":1}", "{\"data\":", "{\"data\":1} x", "{\"data\":1,\"idempotencyKey\":5}" })
        {
            using var response = await _host.Http.PostAsync("/api/v1/channels/news/messages", new StringContent(body, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }

        using var negative = await _host.Http.GetAsync("/api/v1/channels/news/history?limit=-1");
        Assert.Equal(HttpStatusCode.BadRequest, negative.StatusCode);
    }

    [Fact]
    public async Task PlainHttpOnWs_Is400()
    {
        using var response = await _host.Http.GetAsync("/ws");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }
}
