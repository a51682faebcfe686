using System.Net;
using System.Text.Json;
using PushService.FunctionalTests.Infrastructure;
using PushService.Testing;

namespace PushService.FunctionalTests;

/// <summary>
/// <c>GET /sse</c> on a real gateway: pushes as Server-Sent Events whose ids hold every channel's position, resumed
/// exactly with Last-Event-ID, a reset event where history no longer holds the gap, refusals as problem details before
/// the stream starts, the heartbeat, and the stream ended (with a disconnect event) by a drain or a user's disconnect.
/// </summary>
public sealed class ServerSentEventsTests
{
    private const string AdminKey = "sse-admin-key-0123456789abc";

    private static readonly Dictionary<string, string?> Open = new()
    {
        ["PushService:Namespaces:short:HistorySize"] = "2",
    };

    [Fact]
    public async Task Stream_DeliversEveryChannelsMessages_WithIdsThatHoldEveryPosition()
    {
        await using var host = GatewayHost.Start(Open);
        await using var stream = await SseReader.OpenAsync(host.Http, "/sse?channel=a&channel=short:c");
        Assert.Equal(HttpStatusCode.OK, stream.Response.StatusCode);
        Assert.Equal("text/event-stream", stream.Response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("no", stream.Response.Headers.GetValues("X-Accel-Buffering").Single());
        Assert.True(stream.Response.Headers.CacheControl?.NoCache);

        var subscribed = await stream.NextAsync("subscribed", 2);
        Assert.Equal(["a", "short:c"], subscribed.Select(e => e.Data.GetProperty("channel").GetString()));
        Assert.Equal(1000, stream.Retry);
        var epochA = subscribed[0].Data.GetProperty("epoch").GetString();
        var epochB = subscribed[1].Data.GetProperty("epoch").GetString();

        await host.PublishAsync("a", """{"n":1}""");
        await host.PublishAsync("short:c", "\"x\"");
        await host.PublishAsync("a", """{"n":2}""");
        var messages = await stream.NextAsync("message", 3);
        Assert.Equal(["a", "short:c", "a"], messages.Select(m => m.Data.GetProperty("channel").GetString()));
        Assert.Equal("""{"n":2}""", messages[2].Data.GetProperty("data").GetRawText());
        Assert.Equal([$"a:{epochA}:1;short:c:{epochB}:0", $"a:{epochA}:1;short:c:{epochB}:1", $"a:{epochA}:2;short:c:{epochB}:1"], messages.Select(m => m.Id));
    }

    [Fact]
    public async Task LastEventId_ResumesEveryChannelExactly_OnAnotherConnection()
    {
        await using var host = GatewayHost.Start();
        string lastId;
        await using (var first = await SseReader.OpenAsync(host.Http, "/sse?channel=a&channel=b"))
        {
            await first.NextAsync("subscribed", 2);
            for (var n = 1; n <= 3; n++)
            {
                await host.PublishAsync("a", n.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            lastId = (await first.NextAsync("message", 3))[^1].Id!;
        }

        // Missed while away: a 4 to 6 and b 1 and 2.
        for (var n = 4; n <= 6; n++)
        {
            await host.PublishAsync("a", n.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        await host.PublishAsync("b", "\"b1\"");
        await host.PublishAsync("b", "\"b2\"");

        await using var resumed = await SseReader.OpenAsync(host.Http, "/sse?channel=a&channel=b", lastEventId: lastId);
        // Each channel's subscribed event first, then what it missed: five messages in all.
        var events = new List<SseReader.Event>();
        while (events.Count(e => e.Type == "message") < 5)
        {
            events.Add(await resumed.NextAsync());
        }

        await host.PublishAsync("a", "7");
        events.Add((await resumed.NextAsync("message", 1))[0]);

        var received = events.Where(e => e.Type == "message").Select(e => $"{e.Data.GetProperty("channel").GetString()}{e.Data.GetProperty("offset").GetInt64()}").ToList();
        Assert.Equal(["a4", "a5", "a6", "b1", "b2", "a7"], received);
        Assert.All(events.Where(e => e.Type == "subscribed"), e => Assert.True(e.Data.GetProperty("recovered").GetBoolean()));
        Assert.DoesNotContain(events, e => e.Type == "reset");
    }

    [Fact]
    public async Task LastEventId_BeyondHistory_GetsAResetEvent_ThenGoesOnFromNow()
    {
        await using var host = GatewayHost.Start(Open);
        var first = await host.PublishAsync("short:x", "1");
        var epoch = first.GetProperty("epoch").GetString();
        for (var n = 2; n <= 5; n++)
        {
            await host.PublishAsync("short:x", n.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        // History keeps 2: offsets 2 and 3 are gone.
        await using var stream = await SseReader.OpenAsync(host.Http, "/sse?channel=short:x", lastEventId: $"short:x:{epoch}:1");
        var reset = await stream.NextAsync();
        Assert.Equal("reset", reset.Type);
        Assert.Equal(5, reset.Data.GetProperty("offset").GetInt64());
        var subscribed = await stream.NextAsync();
        Assert.Equal("subscribed", subscribed.Type);
        Assert.False(subscribed.Data.GetProperty("recovered").GetBoolean());
        Assert.Equal($"short:x:{epoch}:5", subscribed.Id);

        // Another epoch entirely (the channel's history was lost): a reset too.
        await using var other = await SseReader.OpenAsync(host.Http, "/sse?channel=short:x", lastEventId: "short:x:zzzzzzzz:3");
        Assert.Equal("reset", (await other.NextAsync()).Type);
    }

    [Fact]
    public async Task Refusals_AreProblemDetails_BeforeTheStreamStarts()
    {
        await using var host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:Auth:Jwt:Secret"] = Tokens.Secret,
            ["PushService:Limits:MaxChannelsPerConnection"] = "2",
            ["PushService:Namespaces:private:RequireSubscriptionToken"] = "true",
            ["PushService:WebSocket:AllowedOrigins:0"] = "https://app.example.com",
        });
        var alice = Tokens.Connection("alice", TimeSpan.FromMinutes(2));

        async Task Refused(HttpStatusCode status, string path, string detail, string? bearer = null, string? origin = null)
        {
            await using var stream = await SseReader.OpenAsync(host.Http, path, bearer: bearer, origin: origin);
            Assert.Equal(status, stream.Response.StatusCode);
            Assert.Equal("application/problem+json", stream.Response.Content.Headers.ContentType?.MediaType);
            var problem = JsonDocument.Parse(await stream.Response.Content.ReadAsStringAsync()).RootElement;
            Assert.Contains(detail, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        await Refused(HttpStatusCode.Unauthorized, "/sse?channel=a", "Send a connection token");
        await Refused(HttpStatusCode.Unauthorized, "/sse?channel=a&token=garbage", "not valid");
        await Refused(HttpStatusCode.Unauthorized, $"/sse?channel=a&token={Tokens.Connection("alice", TimeSpan.FromHours(1))}", "must expire within 00:10:00");
        await Refused(HttpStatusCode.BadRequest, $"/sse?token={alice}", "Name the channels");
        await Refused(HttpStatusCode.BadRequest, $"/sse?channel=a&channel=b&channel=c&token={alice}", "at most 2 channels");
        await Refused(HttpStatusCode.BadRequest, $"/sse?channel=no%20spaces&token={alice}", "not a valid channel name");
        await Refused(HttpStatusCode.NotFound, $"/sse?channel=nowhere:a&token={alice}", "not configured");
        await Refused(HttpStatusCode.Forbidden, $"/sse?channel=dm%2342,77&token={alice}", "limited to other users");
        await Refused(HttpStatusCode.Forbidden, $"/sse?channel=private:a&token={alice}", "subscribe over the WebSocket");
        await Refused(HttpStatusCode.Forbidden, $"/sse?channel=a&token={alice}", "AllowedOrigins", origin: "https://evil.example.com");

        // A short-lived token in the address, a long-lived one in the header, and an allowed page's origin: all streams.
        await using (var query = await SseReader.OpenAsync(host.Http, $"/sse?channel=a&token={alice}"))
        {
            Assert.Equal(HttpStatusCode.OK, query.Response.StatusCode);
        }

        await using var header = await SseReader.OpenAsync(host.Http, "/sse?channel=dm%23alice", bearer: Tokens.Connection("alice", TimeSpan.FromHours(1)),
            origin: "https://app.example.com");
        Assert.Equal(HttpStatusCode.OK, header.Response.StatusCode);
        Assert.Equal("https://app.example.com", header.Response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Equal("X-PushService-Node", header.Response.Headers.GetValues("Access-Control-Expose-Headers").Single());
        Assert.False(string.IsNullOrEmpty(header.Response.Headers.GetValues("X-PushService-Node").Single()));
        Assert.Equal("dm#alice", (await header.NextAsync("subscribed", 1))[0].Data.GetProperty("channel").GetString());
    }

    [Fact]
    public async Task Preflight_LetsAnAllowedPageSendItsTokenAndPosition()
    {
        await using var host = GatewayHost.Start(new Dictionary<string, string?> { ["PushService:WebSocket:AllowedOrigins:0"] = "https://app.example.com" });

        async Task<HttpResponseMessage> Preflight(string origin)
        {
            using var request = new HttpRequestMessage(HttpMethod.Options, "/sse?channel=a");
            request.Headers.Add("Origin", origin);
            request.Headers.Add("Access-Control-Request-Method", "GET");
            request.Headers.Add("Access-Control-Request-Headers", "authorization,last-event-id");
            return await host.Http.SendAsync(request);
        }

        using var allowed = await Preflight("https://app.example.com");
        Assert.Equal(HttpStatusCode.NoContent, allowed.StatusCode);
        Assert.Equal("https://app.example.com", allowed.Headers.GetValues("Access-Control-Allow-Origin").Single());
        var headers = allowed.Headers.GetValues("Access-Control-Allow-Headers").Single();
        Assert.Contains("Authorization", headers, StringComparison.Ordinal);
        Assert.Contains("Last-Event-ID", headers, StringComparison.Ordinal);
        using var refused = await Preflight("https://evil.example.com");
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
    }

    [Fact]
    public async Task Streams_HaveAHeartbeat_CountAsConnections_AndEndWithTheirUsersDisconnect()
    {
        await using var host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:Auth:Jwt:Secret"] = Tokens.Secret,
            ["PushService:WebSocket:PingInterval"] = "00:00:01",
            ["PushService:Api:Keys:0:Key"] = AdminKey,
            ["PushService:Api:Keys:0:Scopes:0"] = "admin",
        });
        await using var stream = await SseReader.OpenAsync(host.Http, "/sse?channel=a", bearer: Tokens.Connection("bob", TimeSpan.FromHours(1)));
        await stream.NextAsync("subscribed", 1);
        await UntilAsync(() => Task.FromResult(stream.Comments >= 2), () => $"{stream.Comments} heartbeats in 10 s");

        using var admin = new HttpClient { BaseAddress = host.BaseAddress };
        admin.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminKey);
        var info = JsonDocument.Parse(await admin.GetStringAsync("/api/v1/info")).RootElement;
        Assert.Equal(1, info.GetProperty("nodes")[0].GetProperty("connections").GetInt32());

        using var disconnect = await admin.PostAsync("/api/v1/users/bob/disconnect", new StringContent("""{"reconnect":false}"""));
        Assert.Equal(1, JsonDocument.Parse(await disconnect.Content.ReadAsStringAsync()).RootElement.GetProperty("disconnected").GetInt32());
        var end = await stream.NextAsync("disconnect", 1);
        Assert.Equal(1000, end[0].Data.GetProperty("code").GetInt32());
        Assert.False(end[0].Data.GetProperty("reconnect").GetBoolean());
        await stream.Completion.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(stream.Ended);
        await UntilAsync(async () => JsonDocument.Parse(await admin.GetStringAsync("/api/v1/info")).RootElement.GetProperty("nodes")[0].GetProperty("connections").GetInt32() == 0,
            () => "the stream still counted after it ended");
    }

    [Fact]
    public async Task StreamsAndWebSockets_ShareTheNodesPlaces()
    {
        await using var host = GatewayHost.Start(new Dictionary<string, string?> { ["PushService:Limits:MaxConnections"] = "2" });
        await using var socket = await host.ConnectAsync();
        var stream = await SseReader.OpenAsync(host.Http, "/sse?channel=a");
        await stream.NextAsync("subscribed", 1);

        // The node is full either way: a third stream and a third WebSocket are both refused before they start.
        await using (var third = await SseReader.OpenAsync(host.Http, "/sse?channel=a"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, third.Response.StatusCode);
        }

        Assert.Equal(HttpStatusCode.ServiceUnavailable, await UpgradeStatusAsync(host));

        // A stream that ends gives its place back: a WebSocket takes it.
        await stream.DisposeAsync();
        await UntilAsync(async () => (await host.GetJsonAsync("/api/v1/info")).GetProperty("nodes")[0].GetProperty("connections").GetInt32() == 1,
            () => "the stream still counted after it ended");
        await using var second = await host.ConnectAsync();
        Assert.Equal("{}", (await second.ResultAsync(new { op = "ping" })).GetRawText());
    }

    private static async Task<HttpStatusCode?> UpgradeStatusAsync(GatewayHost host)
    {
        using var refused = new System.Net.WebSockets.ClientWebSocket();
        refused.Options.CollectHttpResponseDetails = true;
        await Assert.ThrowsAsync<System.Net.WebSockets.WebSocketException>(() => refused.ConnectAsync(host.WebSocketUri, CancellationToken.None));
        return refused.HttpStatusCode;
    }

    [Fact]
    public async Task AStreamThatFallsBehind_EndsAsASlowConsumer_AndTheOthersGoOn()
    {
        await using var host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:Limits:ClientQueueMaxBytes"] = "65536",
            ["PushService:Limits:CloseTimeout"] = "00:00:01",
            ["PushService:WebSocket:PingInterval"] = "00:00:01",
        });
        await using var slow = await SseReader.OpenAsync(host.Http, "/sse?channel=firehose", paused: true);
        await using var fast = await SseReader.OpenAsync(host.Http, "/sse?channel=firehose");
        await fast.NextAsync("subscribed", 1);
        await UntilAsync(async () => JsonDocument.Parse(await host.Http.GetStringAsync("/api/v1/channels")).RootElement.GetProperty("channels")[0]
            .GetProperty("subscribers").GetInt32() == 2, () => "both streams subscribed");

        // The slow one reads nothing: the socket's buffers fill (a few MB on loopback), then its queue's 64 KiB, and it is
        // ended with 4500; as it reads nothing, not even that, it is cut off a heartbeat past the close timeout. The fast
        // one keeps up (each round read before the next is published) and is not touched.
        var payload = JsonSerializer.Serialize(new string('x', 16_000));
        for (var round = 0; round < 400 && Activity4500(await Activity(host)) == 0; round++)
        {
            for (var i = 0; i < 3; i++)
            {
                await host.PublishAsync("firehose", payload);
            }

            Assert.Equal(3, (await fast.NextAsync("message", 3, TimeSpan.FromSeconds(30))).Count);
        }

        await UntilAsync(async () => Activity4500(await Activity(host)) == 1, () => "no stream ended with 4500");
        await UntilAsync(async () => JsonDocument.Parse(await host.Http.GetStringAsync("/api/v1/channels")).RootElement.GetProperty("channels")[0]
            .GetProperty("subscribers").GetInt32() == 1, () => "the slow stream was not cut off");
        Assert.Equal(1, host.ObservedCounter("pushservice.slow_consumers"));

        // The fast one goes on.
        await host.PublishAsync("firehose", "\"after\"");
        Assert.Equal("after", (await fast.NextAsync("message", 1))[0].Data.GetProperty("data").GetString());
    }

    private static async Task<JsonElement> Activity(GatewayHost host) =>
        JsonDocument.Parse(await host.Http.GetStringAsync("/api/v1/admin/activity")).RootElement;

    private static long Activity4500(JsonElement activity) =>
        activity.GetProperty("disconnects").TryGetProperty("4500", out var count) ? count.GetInt64() : 0;

    [Fact]
    public async Task ADrainingNode_EndsItsStreams_TellingThemToComeBack()
    {
        var host = GatewayHost.Start();
        var stream = await SseReader.OpenAsync(host.Http, "/sse?channel=a");
        await stream.NextAsync("subscribed", 1);

        var stopping = host.DisposeAsync().AsTask();
        var end = await stream.NextAsync("disconnect", 1, TimeSpan.FromSeconds(20));
        Assert.Equal(1001, end[0].Data.GetProperty("code").GetInt32());
        Assert.True(end[0].Data.GetProperty("reconnect").GetBoolean());
        await stopping.WaitAsync(TimeSpan.FromSeconds(30));
        await stream.DisposeAsync();
    }

    private static async Task UntilAsync(Func<Task<bool>> condition, Func<string> failure)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure());
            await Task.Delay(50);
        }
    }
}
