using System.Net;
using PushService.FunctionalTests.Infrastructure;
using PushService.Testing;

namespace PushService.FunctionalTests;

/// <summary>Presence and join/leave on one node (the in-memory broker); the Redis suite checks them across nodes.</summary>
public sealed class PresenceTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public Task InitializeAsync()
    {
        _host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:Namespaces:room:Presence"] = "true",
            ["PushService:Namespaces:room:JoinLeave"] = "true",
        });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task Presence_ListsSubscribers_AndJoinLeaveArePushed()
    {
        await using var alice = await _host.ConnectAsync(connect: false);
        var aliceId = (await alice.ResultAsync(new { op = "connect" })).GetProperty("client").GetString();
        await alice.ResultAsync(new { op = "subscribe", channel = "room:1" });
        await using var bob = await _host.ConnectAsync(connect: false);
        var bobId = (await bob.ResultAsync(new { op = "connect" })).GetProperty("client").GetString();
        await bob.ResultAsync(new { op = "subscribe", channel = "room:1" });

        // Every live subscriber sees each join after its own subscribe result: alice sees hers and bob's. In either
        // order: a join is announced after the subscribe result is sent, so alice's may be announced after bob's.
        var first = await NextOfTypeAsync(alice, "join");
        var second = await NextOfTypeAsync(alice, "join");
        Assert.Equal("room:1", second.GetProperty("channel").GetString());
        Assert.Equal(
            new[] { aliceId, bobId }.Order(StringComparer.Ordinal),
            new[] { first.GetProperty("client").GetString(), second.GetProperty("client").GetString() }.Order(StringComparer.Ordinal));
        // Bob may or may not see alice's join, depending on when it was dispatched; his own comes either way.
        while ((await NextOfTypeAsync(bob, "join")).GetProperty("client").GetString() != bobId)
        {
        }

        var presence = await alice.ResultAsync(new { op = "presence", channel = "room:1" });
        Assert.Equal(2, presence.GetProperty("clients").GetArrayLength());
        Assert.Contains(presence.GetProperty("clients").EnumerateArray(), c => c.GetProperty("client").GetString() == bobId);

        var rest = await _host.GetJsonAsync("/api/v1/channels/room:1/presence");
        Assert.Equal(2, rest.GetProperty("clients").GetArrayLength());

        await bob.ResultAsync(new { op = "unsubscribe", channel = "room:1" });
        var leave = await NextOfTypeAsync(alice, "leave");
        Assert.Equal(bobId, leave.GetProperty("client").GetString());
        Assert.Equal(1, (await alice.ResultAsync(new { op = "presence", channel = "room:1" })).GetProperty("clients").GetArrayLength());
    }

    [Fact]
    public async Task Disconnect_LeavesPresence()
    {
        await using var stays = await _host.ConnectAsync();
        await stays.ResultAsync(new { op = "subscribe", channel = "room:2" });
        var goes = await _host.ConnectAsync();
        await goes.ResultAsync(new { op = "subscribe", channel = "room:2" });
        await goes.DisposeAsync();
        await NextOfTypeAsync(stays, "leave");
        Assert.Equal(1, (await stays.ResultAsync(new { op = "presence", channel = "room:2" })).GetProperty("clients").GetArrayLength());
    }

    [Fact]
    public async Task PresenceOff_Is404OnRest()
    {
        using var response = await _host.Http.GetAsync("/api/v1/channels/news/presence");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    private static async Task<System.Text.Json.JsonElement> NextOfTypeAsync(TestClient client, string type)
    {
        while (true)
        {
            var push = await client.NextPushAsync();
            if (push.GetProperty("type").GetString() == type)
            {
                return push;
            }
        }
    }
}
