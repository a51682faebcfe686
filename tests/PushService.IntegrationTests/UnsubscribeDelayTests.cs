using System.Diagnostics;
using System.Globalization;
using PushService.Client;
using PushService.IntegrationTests.Infrastructure;
using PushService.Testing;

namespace PushService.IntegrationTests;

/// <summary>
/// A node keeps its Redis subscription to a channel for <c>Cluster:UnsubscribeDelay</c> after the channel's last local
/// subscriber left, so subscribers that come and go do not subscribe and unsubscribe Redis each time; observed on the
/// real Redis with <c>PUBSUB NUMSUB</c>.
/// </summary>
public sealed class UnsubscribeDelayTests
{
    [Fact]
    public async Task TheLastSubscriberLeaving_KeepsTheRedisSubscription_ForTheDelay_ThenReleasesIt()
    {
        await using var cluster = await TestCluster.StartAsync(1, Delay("00:00:01"));
        var node = cluster.Nodes[0];
        await using var client = await TestClient.OpenAsync(node.WebSocketUri);
        await client.ResultAsync(new { op = "connect" });
        await client.ResultAsync(new { op = "subscribe", channel = "lingering" });
        Assert.Equal(1, await SubscribersInRedisAsync(cluster.Redis, "lingering"));

        // Timed from before the command: the node starts the delay while handling it, and a reply slow to come back
        // (CI once took 0.7 s) would otherwise eat into the delay and look like an early release.
        var leaving = Stopwatch.StartNew();
        await client.ResultAsync(new { op = "unsubscribe", channel = "lingering" });
        Assert.Equal(1, await SubscribersInRedisAsync(cluster.Redis, "lingering"));
        await WaitForAsync(async () => await SubscribersInRedisAsync(cluster.Redis, "lingering") == 0, TimeSpan.FromSeconds(10));
        Assert.True(leaving.Elapsed >= TimeSpan.FromSeconds(1), $"released {leaving.Elapsed} after the unsubscribe was sent, before the delay");
    }

    [Fact]
    public async Task ASubscriberComingBackWithinTheDelay_RecoversWhatWasPublishedMeanwhile_AndGetsWhatFollows()
    {
        await using var cluster = await TestCluster.StartAsync(1, Delay("00:01:00"));
        var node = cluster.Nodes[0];
        var publisher = PushPublisher.Create(node.BaseAddress);
        string epoch;
        long seen;
        await using (var first = await TestClient.OpenAsync(node.WebSocketUri))
        {
            await first.ResultAsync(new { op = "connect" });
            epoch = (await first.ResultAsync(new { op = "subscribe", channel = "returning" })).GetProperty("epoch").GetString()!;
            await publisher.PublishAsync("returning", "\"a\"");
            seen = (await first.MessagesAsync("returning", 1))[0].GetProperty("offset").GetInt64();
        }

        // No local subscriber now, the Redis subscription still standing: this publication reaches the node and nobody.
        await publisher.PublishAsync("returning", "\"b\"");

        await using var second = await TestClient.OpenAsync(node.WebSocketUri);
        await second.ResultAsync(new { op = "connect" });
        var result = await second.ResultAsync(new { op = "subscribe", channel = "returning", since = new { epoch, offset = seen } });
        Assert.True(result.GetProperty("recovered").GetBoolean());
        Assert.Equal(["b"], result.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("data").GetString()));
        Assert.Equal(1, await SubscribersInRedisAsync(cluster.Redis, "returning"));

        var next = await publisher.PublishAsync("returning", "\"c\"");
        var message = (await second.MessagesAsync("returning", 1))[0];
        Assert.Equal("c", message.GetProperty("data").GetString());
        Assert.Equal(seen + 2, message.GetProperty("offset").GetInt64());
        Assert.Equal(next.Offset, message.GetProperty("offset").GetInt64());
    }

    [Fact]
    public async Task WithNoDelay_TheLastSubscriberLeaving_ReleasesTheRedisSubscriptionAtOnce()
    {
        await using var cluster = await TestCluster.StartAsync(1, Delay("00:00:00"));
        var node = cluster.Nodes[0];
        await using var client = await TestClient.OpenAsync(node.WebSocketUri);
        await client.ResultAsync(new { op = "connect" });
        await client.ResultAsync(new { op = "subscribe", channel = "brief" });
        Assert.Equal(1, await SubscribersInRedisAsync(cluster.Redis, "brief"));

        // The unsubscribe's reply goes out once the hub has released the channel.
        await client.ResultAsync(new { op = "unsubscribe", channel = "brief" });
        Assert.Equal(0, await SubscribersInRedisAsync(cluster.Redis, "brief"));
    }

    private static Dictionary<string, string> Delay(string delay) => new() { ["PushService:Cluster:UnsubscribeDelay"] = delay };

    /// <summary>Subscribers Redis counts on the channel's pub/sub channel (the broker's key prefix is <c>ps</c>).</summary>
    private static async Task<long> SubscribersInRedisAsync(RedisServer redis, string channel)
    {
        // Reply: *2 $len name :count
        var reply = await redis.RawAsync("PUBSUB", "NUMSUB", $"ps:{{{channel}}}:c");
        var count = reply.Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Last(line => line.StartsWith(':'));
        return long.Parse(count.AsSpan(1), CultureInfo.InvariantCulture);
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(deadline.Elapsed < timeout, $"not within {timeout}");
            await Task.Delay(50);
        }
    }
}
