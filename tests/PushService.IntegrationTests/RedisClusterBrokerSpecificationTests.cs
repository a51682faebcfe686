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

    protected override void Started(RedisConnection connection) => Assert.True(connection.Sharded, "a Redis Cluster must use sharded pub/sub");
}
