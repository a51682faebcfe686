using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using PushService.Client;
using PushService.IntegrationTests.Infrastructure;
using PushService.Testing;

namespace PushService.IntegrationTests;

/// <summary>Three real gateway processes on one real redis-server: delivery, recovery, idempotency, presence, control.</summary>
public sealed class ClusterTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await TestCluster.StartAsync(3, new Dictionary<string, string>
    {
        ["PushService:Auth:Jwt:Secret"] = Tokens.Secret,
        ["PushService:Auth:AllowAnonymous"] = "true",
        ["PushService:DefaultNamespace:AllowAnonymousSubscribe"] = "true",
        ["PushService:Namespaces:room:Presence"] = "true",
        ["PushService:Namespaces:room:JoinLeave"] = "true",
        ["PushService:Namespaces:room:AllowAnonymousSubscribe"] = "true",
    });

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    internal static async Task<List<ChannelEvent>> MessagesAsync(PushSubscription subscription, int count, TimeSpan? timeout = null)
    {
        var messages = new List<ChannelEvent>();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        try
        {
            while (messages.Count < count)
            {
                var e = await subscription.Events.ReadAsync(cts.Token);
                if (e.Kind == ChannelEventKind.Message)
                {
                    messages.Add(e);
                }
                else if (e.Kind == ChannelEventKind.Reset)
                {
                    Assert.Fail($"continuity lost on {subscription.Channel} after {messages.Count} messages");
                }
            }
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"got {messages.Count} of {count} messages on {subscription.Channel}");
        }

        return messages;
    }

    [Fact]
    public async Task Publications_ReachSubscribersOnEveryNode_InOffsetOrder()
    {
        var subscriptions = new List<PushSubscription>();
        for (var i = 0; i < 6; i++)
        {
            var client = await _cluster.ClientAsync(i % 3);
            subscriptions.Add(await client.SubscribeAsync("orders"));
        }

        var publishers = _cluster.Nodes.Select(n => PushPublisher.Create(n.BaseAddress)).ToArray();
        for (var i = 1; i <= 60; i++)
        {
            await publishers[i % 3].PublishAsync("orders", $"{{\"n\":{i}}}");
        }

        foreach (var subscription in subscriptions)
        {
            var messages = await MessagesAsync(subscription, 60);
            Assert.Equal(Enumerable.Range(1, 60).Select(i => (long)i), messages.Select(m => m.Offset));
            Assert.Equal(Enumerable.Range(1, 60), messages.Select(m => m.Data.GetProperty("n").GetInt32()));
        }
    }

    [Fact]
    public async Task FirstSubscriberOnANode_DuringSteadyPublishing_SeesNoGapAndNoDuplicate()
    {
        // A channel's first subscriber on a node takes the node's Redis subscription, and its offset is the position
        // read right after that subscription: whatever is published from then on must reach it, exactly once.
        var publisher = PushPublisher.Create(_cluster.Nodes[1].BaseAddress);
        for (var round = 0; round < 5; round++)
        {
            var channel = $"steady{round}";
            using var stop = new CancellationTokenSource();
            var publishing = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    await publisher.PublishAsync(channel, "\"during\"");
                }
            });

            await Task.Delay(30);
            await using var client = await TestClient.OpenAsync(_cluster.Nodes[0].WebSocketUri);
            await client.ResultAsync(new { op = "connect" });
            var start = (await client.ResultAsync(new { op = "subscribe", channel })).GetProperty("offset").GetInt64();
            await Task.Delay(100);
            await stop.CancelAsync();
            await publishing;
            var last = 0L;
            for (var i = 0; i < 3; i++)
            {
                last = (await publisher.PublishAsync(channel, "\"after\"")).Offset;
            }

            var messages = await client.MessagesAsync(channel, (int)(last - start));
            Assert.Equal(Enumerable.Range((int)start + 1, (int)(last - start)).Select(i => (long)i), messages.Select(m => m.GetProperty("offset").GetInt64()));
            Assert.False(client.TryNextPush(out _));
        }
    }

    [Fact]
    public async Task Recovery_IsServedByANodeOtherThanTheFirst()
    {
        string epoch;
        long seen;
        await using (var first = await TestClient.OpenAsync(_cluster.Nodes[0].WebSocketUri))
        {
            await first.ResultAsync(new { op = "connect" });
            epoch = (await first.ResultAsync(new { op = "subscribe", channel = "feed" })).GetProperty("epoch").GetString()!;
            await PushPublisher.Create(_cluster.Nodes[0].BaseAddress).PublishAsync("feed", "\"a\"");
            seen = (await first.MessagesAsync("feed", 1))[0].GetProperty("offset").GetInt64();
        }

        var viaSecond = PushPublisher.Create(_cluster.Nodes[1].BaseAddress);
        await viaSecond.PublishAsync("feed", "\"b\"");
        await viaSecond.PublishAsync("feed", "\"c\"");

        await using var third = await TestClient.OpenAsync(_cluster.Nodes[2].WebSocketUri);
        await third.ResultAsync(new { op = "connect" });
        var result = await third.ResultAsync(new { op = "subscribe", channel = "feed", since = new { epoch, offset = seen } });
        Assert.True(result.GetProperty("recovered").GetBoolean());
        Assert.Equal(["b", "c"], result.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("data").GetString()));

        var history = JsonDocument.Parse(await _cluster.Nodes[2].Http.GetStringAsync("/api/v1/channels/feed/history")).RootElement;
        Assert.Equal(3, history.GetProperty("messages").GetArrayLength());
    }

    [Fact]
    public async Task IdempotencyKey_HoldsAcrossNodes()
    {
        var client = await _cluster.ClientAsync(2);
        var subscription = await client.SubscribeAsync("payments");
        var first = await PushPublisher.Create(_cluster.Nodes[0].BaseAddress).PublishAsync("payments", "{\"amount\":5}", "payment-77");
        var again = await PushPublisher.Create(_cluster.Nodes[1].BaseAddress).PublishAsync("payments", "{\"amount\":5}", "payment-77");
        Assert.Equal(first, again);

        using var conflict = await _cluster.Nodes[2].Http.PostAsync("/api/v1/channels/payments/messages",
            new StringContent("{\"data\":{\"amount\":6},\"idempotencyKey\":\"payment-77\"}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);

        await PushPublisher.Create(_cluster.Nodes[2].BaseAddress).PublishAsync("payments", "\"marker\"");
        var messages = await MessagesAsync(subscription, 2);
        Assert.Equal([1L, 2L], messages.Select(m => m.Offset));
        Assert.Equal("marker", messages[1].Data.GetString());
    }

    [Fact]
    public async Task PresenceAndJoinLeave_SpanNodes()
    {
        await using var alice = await TestClient.OpenAsync(_cluster.Nodes[0].WebSocketUri);
        await alice.ResultAsync(new { op = "connect", token = Tokens.Connection("alice") });
        await alice.ResultAsync(new { op = "subscribe", channel = "room:1" });
        await using var bob = await TestClient.OpenAsync(_cluster.Nodes[1].WebSocketUri);
        var bobId = (await bob.ResultAsync(new { op = "connect", token = Tokens.Connection("bob") })).GetProperty("client").GetString();
        await bob.ResultAsync(new { op = "subscribe", channel = "room:1" });

        var join = await NextAsync(alice, "join", bobId);
        Assert.Equal("bob", join.GetProperty("user").GetString());

        var presence = JsonDocument.Parse(await _cluster.Nodes[2].Http.GetStringAsync("/api/v1/channels/room:1/presence")).RootElement;
        Assert.Equal(["alice", "bob"], presence.GetProperty("clients").EnumerateArray().Select(c => c.GetProperty("user").GetString()).Order());

        await bob.ResultAsync(new { op = "unsubscribe", channel = "room:1" });
        Assert.Equal("bob", (await NextAsync(alice, "leave", bobId)).GetProperty("user").GetString());
        var after = await alice.ResultAsync(new { op = "presence", channel = "room:1" });
        Assert.Equal(["alice"], after.GetProperty("clients").EnumerateArray().Select(c => c.GetProperty("user").GetString()));
    }

    [Fact]
    public async Task DisconnectUser_ReachesEveryNode()
    {
        await using var onFirst = await TestClient.OpenAsync(_cluster.Nodes[0].WebSocketUri);
        await onFirst.ResultAsync(new { op = "connect", token = Tokens.Connection("mallory") });
        await using var onSecond = await TestClient.OpenAsync(_cluster.Nodes[1].WebSocketUri);
        await onSecond.ResultAsync(new { op = "connect", token = Tokens.Connection("mallory") });
        await using var bystander = await TestClient.OpenAsync(_cluster.Nodes[1].WebSocketUri);
        await bystander.ResultAsync(new { op = "connect", token = Tokens.Connection("alice") });

        using var response = await _cluster.Nodes[2].Http.PostAsync("/api/v1/users/mallory/disconnect", new StringContent("{\"reconnect\":false}"));
        Assert.Equal("{\"disconnected\":2}", await response.Content.ReadAsStringAsync());
        Assert.Equal(1000, (await onFirst.ClosedAsync()).Code);
        Assert.Equal(1000, (await onSecond.ClosedAsync()).Code);
        Assert.Equal("{}", (await bystander.ResultAsync(new { op = "ping" })).GetRawText());
    }

    [Fact]
    public async Task InfoAndChannels_CoverTheCluster()
    {
        var clients = new List<TestClient>();
        for (var i = 0; i < 3; i++)
        {
            var client = await TestClient.OpenAsync(_cluster.Nodes[i].WebSocketUri);
            await client.ResultAsync(new { op = "connect" });
            await client.ResultAsync(new { op = "subscribe", channel = "everywhere" });
            clients.Add(client);
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        JsonElement channels;
        do
        {
            await Task.Delay(200);
            channels = JsonDocument.Parse(await _cluster.Nodes[0].Http.GetStringAsync("/api/v1/channels")).RootElement;
        }
        while (!channels.GetProperty("channels").EnumerateArray().Any(c => c.GetProperty("channel").GetString() == "everywhere" && c.GetProperty("subscribers").GetInt32() == 3)
            && DateTime.UtcNow < deadline);

        Assert.Contains(channels.GetProperty("channels").EnumerateArray(),
            c => c.GetProperty("channel").GetString() == "everywhere" && c.GetProperty("subscribers").GetInt32() == 3);
        var info = JsonDocument.Parse(await _cluster.Nodes[1].Http.GetStringAsync("/api/v1/info")).RootElement;
        Assert.Equal(["node-1", "node-2", "node-3"], info.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("node").GetString()).Order());
        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }
    }

    private static async Task<JsonElement> NextAsync(TestClient client, string type, string? clientId)
    {
        while (true)
        {
            var push = await client.NextPushAsync();
            if (push.GetProperty("type").GetString() == type && push.GetProperty("client").GetString() == clientId)
            {
                return push;
            }
        }
    }
}
