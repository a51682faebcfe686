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
public sealed class RedisClusterBrokerSpecificationTests : BrokerSpecification, IClassFixture<RedisClusterFixture>
{
    private readonly RedisClusterFixture _cluster;
    private readonly List<ServiceProvider> _providers = [];

    public RedisClusterBrokerSpecificationTests(RedisClusterFixture cluster) => _cluster = cluster;

    protected override async Task<IBroker> CreateBrokerAsync(IBrokerEventHandler handler)
    {
        var provider = RedisBrokerSpecificationTests.BuildNode(_cluster.Configuration);
        _providers.Add(provider);
        var connection = provider.GetRequiredService<RedisConnection>();
        var broker = provider.GetRequiredService<RedisBroker>();
        await broker.StartAsync(handler, CancellationToken.None);
        Assert.True(connection.Sharded, "a Redis Cluster must use sharded pub/sub");
        return broker;
    }

    protected override Task AdvanceTimeAsync(TimeSpan by) => Task.Delay(by);

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        foreach (var provider in _providers)
        {
            await provider.DisposeAsync();
        }
    }
}
