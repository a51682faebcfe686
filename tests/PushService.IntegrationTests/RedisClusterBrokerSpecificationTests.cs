using PushService.Broker.Redis;
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
/// The broker specification against the same kind of cluster named by one of its nodes, with classic pub/sub: the
/// broker's own subscription connection reads from that node (classic pub/sub reaches every node of a cluster), and its
/// own command connection declines the cluster node, whose answer to keys of other slots would be <c>MOVED</c>, so
/// publications go through StackExchange.Redis, which follows it.
/// </summary>
public sealed class RedisClusterNodeBrokerSpecificationTests(RedisClusterFixture cluster) : RedisSpecification, IClassFixture<RedisClusterFixture>
{
    protected override string Configuration => cluster.Configuration.Split(',')[0];

    protected override void Configure(RedisBrokerOptions options) => options.ShardedPubSub = false;

    protected override void Started(RedisBroker broker, RedisConnection connection)
    {
        Assert.False(connection.Sharded);
        Assert.True(broker.PublishesDirectly && broker.ReadsSubscriptionsDirectly);
        Assert.Equal(0, broker.CommandConnects);
    }
}
