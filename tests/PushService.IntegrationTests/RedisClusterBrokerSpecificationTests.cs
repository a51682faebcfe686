using Microsoft.Extensions.DependencyInjection;
using PushService.Broker;
using PushService.Broker.Redis;
using PushService.Broker.Specification;
using PushService.IntegrationTests.Infrastructure;

namespace PushService.IntegrationTests;

/// <summary>
/// The broker specification, unchanged, against a three-master Redis Cluster: channels spread over shards, each channel's
/// keys on one slot, publications on sharded pub/sub (SPUBLISH/SSUBSCRIBE).
/// </summary>
public sealed class RedisClusterBrokerSpecificationTests(RedisClusterFixture cluster) : RedisSpecification, IClassFixture<RedisClusterFixture>
{
    protected override string Configuration => cluster.Configuration;

    protected override void Started(RedisBroker broker, RedisConnection connection)
    {
        Assert.True(connection.Sharded, "a Redis Cluster must use sharded pub/sub");
        Assert.False(broker.PublishesDirectly || broker.ReadsSubscriptionsDirectly);
    }
}

/// <summary>
/// A cluster named by one of its nodes, with classic pub/sub: the broker's own subscription connection reads from that
/// node (classic pub/sub reaches every node of a cluster), and its own command connection must decline the node, whose
/// answer to keys of other slots would be <c>MOVED</c>, so publications go through StackExchange.Redis, which follows it.
/// </summary>
public sealed class RedisClusterNodeTests(RedisClusterFixture cluster) : IClassFixture<RedisClusterFixture>
{
    [Fact]
    public async Task ANodeNamedAlone_IsNotPublishedOnDirectly_AndChannelsOnEveryShardWork()
    {
        await using var provider = RedisSpecification.BuildNode(cluster.Configuration.Split(',')[0], o => o.ShardedPubSub = false);
        var broker = provider.GetRequiredService<RedisBroker>();
        var handler = new BrokerSpecification.RecordingHandler();
        await broker.StartAsync(handler, CancellationToken.None);
        Assert.True(broker.PublishesDirectly && broker.ReadsSubscriptionsDirectly);
        Assert.Equal(0, broker.CommandConnects);

        // Thirty channels' slots lie on all three masters: most are not on the node named.
        var keep = new PublishOptions { HistorySize = 10, HistoryTtl = TimeSpan.FromMinutes(1) };
        var channels = Enumerable.Range(0, 30).Select(i => $"node-{Guid.NewGuid():N}-{i}").ToList();
        foreach (var channel in channels)
        {
            await broker.SubscribeAsync(channel);
            Assert.Equal(1, (await broker.PublishAsync(channel, "{}"u8.ToArray(), keep)).Position.Offset);
        }

        foreach (var channel in channels)
        {
            Assert.Equal([1L], (await handler.WaitForAsync(channel, 1)).Select(p => p.Offset));
        }

        Assert.Equal(0, broker.DirectCommands);
    }
}
