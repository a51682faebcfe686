using System.Net.WebSockets;
using System.Text.Json;
using PushService.FunctionalTests.Infrastructure;
using PushService.Testing;

namespace PushService.FunctionalTests;

/// <summary>The basic flow of contract v1 over real sockets: connect, subscribe, publish, receive, unsubscribe.</summary>
public sealed class ConnectAndSubscribeTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public Task InitializeAsync()
    {
        _host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:NodeId"] = "node-under-test",
            ["PushService:Namespaces:chat:AllowClientPublish"] = "true",
            ["PushService:Namespaces:chat:HistorySize"] = "50",
        });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task Connect_ReturnsClientIdNodeAndPingInterval()
    {
        await using var client = await _host.ConnectAsync(connect: false);
        var result = await client.ResultAsync(new { op = "connect", name = "tests", version = "1.0" });
        Assert.False(string.IsNullOrEmpty(result.GetProperty("client").GetString()));
        Assert.Equal("node-under-test", result.GetProperty("node").GetString());
        Assert.Equal(25, result.GetProperty("pingInterval").GetInt32());
    }

    [Fact]
    public async Task SubProtocol_IsSelectedWhenAsked()
    {
        await using var client = await _host.ConnectAsync(configure: o => o.AddSubProtocol("push.v1.json"));
        Assert.Equal("push.v1.json", client.SubProtocol);
    }

    [Fact]
    public async Task Subscribe_ThenRestPublish_DeliversTheDataAsPublished()
    {
        await using var client = await _host.ConnectAsync();
        var subscribed = await client.ResultAsync(new { op = "subscribe", channel = "news" });
        Assert.Equal(0, subscribed.GetProperty("offset").GetInt64());
        Assert.False(subscribed.GetProperty("recovered").GetBoolean());
        Assert.Empty(subscribed.GetProperty("messages").EnumerateArray());

        var published = await _host.PublishAsync("news", "{\"headline\" : \"é \\u00e9\",\r\n\"n\":[1, 2.50]}");
        Assert.Equal("news", published.GetProperty("channel").GetString());
        Assert.Equal(1, published.GetProperty("offset").GetInt64());
        Assert.Equal(subscribed.GetProperty("epoch").GetString(), published.GetProperty("epoch").GetString());

        var message = (await client.MessagesAsync("news", 1))[0];
        Assert.Equal(1, message.GetProperty("offset").GetInt64());
        Assert.Equal("{\"headline\" : \"é \\u00e9\",  \"n\":[1, 2.50]}", message.GetProperty("data").GetRawText());
    }

    [Fact]
    public async Task EveryLocalSubscriber_GetsEveryMessageInOrder()
    {
        var clients = new List<TestClient>();
        for (var i = 0; i < 5; i++)
        {
            var client = await _host.ConnectAsync();
            await client.ResultAsync(new { op = "subscribe", channel = "fan" });
            clients.Add(client);
        }

        for (var i = 1; i <= 20; i++)
        {
            await _host.PublishAsync("fan", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        foreach (var client in clients)
        {
            var messages = await client.MessagesAsync("fan", 20);
            Assert.Equal(Enumerable.Range(1, 20), messages.Select(m => m.GetProperty("data").GetInt32()));
            Assert.Equal(Enumerable.Range(1, 20).Select(i => (long)i), messages.Select(m => m.GetProperty("offset").GetInt64()));
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task Unsubscribe_StopsDelivery()
    {
        await using var client = await _host.ConnectAsync();
        await client.ResultAsync(new { op = "subscribe", channel = "unsub" });
        await client.ResultAsync(new { op = "subscribe", channel = "marker" });
        var unsubscribed = await client.ResultAsync(new { op = "unsubscribe", channel = "unsub" });
        Assert.Equal(JsonValueKind.Object, unsubscribed.ValueKind);

        await _host.PublishAsync("unsub", "1");
        await _host.PublishAsync("marker", "2");
        var push = await client.NextPushAsync();
        Assert.Equal("marker", push.GetProperty("channel").GetString());
        Assert.Empty(await _host.GetJsonAsync("/api/v1/channels").ContinueWith(t => t.Result.GetProperty("channels").EnumerateArray()
            .Where(c => c.GetProperty("channel").GetString() == "unsub").ToList()));
    }

    [Fact]
    public async Task ClientPublish_IsDeniedByDefault_AndWorksWhereTheNamespaceAllowsIt()
    {
        await using var publisher = await _host.ConnectAsync();
        await using var subscriber = await _host.ConnectAsync();
        Assert.Equal("permission_denied", await publisher.ErrorCodeAsync(new { op = "publish", channel = "news", data = 1 }));

        await subscriber.ResultAsync(new { op = "subscribe", channel = "chat:lobby" });
        var result = await publisher.ResultAsync(new { op = "publish", channel = "chat:lobby", data = new { text = "hi" } });
        Assert.Equal(1, result.GetProperty("offset").GetInt64());
        var message = (await subscriber.MessagesAsync("chat:lobby", 1))[0];
        Assert.Equal("hi", message.GetProperty("data").GetProperty("text").GetString());

        Assert.Equal("bad_request", await publisher.ErrorCodeAsync(new { op = "publish", channel = "chat:lobby" }));
    }

    [Fact]
    public async Task Ping_ReturnsEmptyResult()
    {
        await using var client = await _host.ConnectAsync();
        var result = await client.ResultAsync(new { op = "ping" });
        Assert.Equal("{}", result.GetRawText());
    }

    [Fact]
    public async Task Presence_WhereNotEnabled_IsPermissionDenied()
    {
        await using var client = await _host.ConnectAsync();
        Assert.Equal("permission_denied", await client.ErrorCodeAsync(new { op = "presence", channel = "news" }));
    }

    [Fact]
    public async Task ClientClose_IsAnsweredAndCleansUp()
    {
        var client = await _host.ConnectAsync();
        await client.ResultAsync(new { op = "subscribe", channel = "cleanup" });
        await client.DisposeAsync();
        Assert.Equal(WebSocketState.Closed, client.State);
        for (var i = 0; i < 50 && (await _host.GetJsonAsync("/api/v1/info")).GetProperty("nodes")[0].GetProperty("connections").GetInt32() > 0; i++)
        {
            await Task.Delay(100);
        }

        var node = (await _host.GetJsonAsync("/api/v1/info")).GetProperty("nodes")[0];
        Assert.Equal(0, node.GetProperty("connections").GetInt32());
        Assert.Equal(0, node.GetProperty("subscriptions").GetInt32());
    }
}
