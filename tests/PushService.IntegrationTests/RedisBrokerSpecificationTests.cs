using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using PushService.Broker;
using PushService.Broker.Redis;
using PushService.Broker.Specification;
using PushService.Gateway;
using PushService.Gateway.Configuration;
using PushService.IntegrationTests.Infrastructure;
using StackExchange.Redis;

namespace PushService.IntegrationTests;

/// <summary>
/// The broker specification, unchanged, against a real redis-server. Each broker is its own node (own multiplexer), and
/// publishes and subscribes on connections of its own, as by default.
/// </summary>
public sealed class RedisBrokerSpecificationTests(RedisFixture redis) : RedisSpecification, IClassFixture<RedisFixture>
{
    protected override string Configuration => redis.Server.Configuration;

    protected override void Started(RedisBroker broker, RedisConnection connection)
    {
        Assert.Same(SocketManager.ThreadPool, connection.SocketManager);
        Assert.True(broker.PublishesDirectly && broker.ReadsSubscriptionsDirectly);
        Assert.Equal(1, broker.CommandConnects);
    }
}

/// <summary>
/// The same with StackExchange.Redis doing all of it (<c>Redis:DirectPublish</c> and <c>Redis:DirectSubscriptions</c>
/// off), reading on its dedicated threads (<c>Redis:DedicatedIoThreads</c>).
/// </summary>
public sealed class RedisDedicatedThreadsBrokerSpecificationTests(RedisFixture redis) : RedisSpecification, IClassFixture<RedisFixture>
{
    protected override string Configuration => redis.Server.Configuration;

    protected override void Configure(RedisBrokerOptions options) =>
        (options.DedicatedIoThreads, options.BypassLibraryPublish, options.BypassLibrarySubscriptions) = (true, false, false);

    protected override void Started(RedisBroker broker, RedisConnection connection)
    {
        Assert.Same(SocketManager.Shared, connection.SocketManager);
        Assert.False(broker.PublishesDirectly || broker.ReadsSubscriptionsDirectly);
    }
}

/// <summary>The broker specification against some Redis deployment; subclasses say which.</summary>
public abstract class RedisSpecification : BrokerSpecification
{
    private readonly List<ServiceProvider> _providers = [];

    /// <summary>The StackExchange.Redis configuration string of the deployment under test.</summary>
    protected abstract string Configuration { get; }

    /// <summary>Options of each broker beyond the deployment's address.</summary>
    protected virtual void Configure(RedisBrokerOptions options)
    {
    }

    /// <summary>Called with each started broker and its multiplexer, for checks of the deployment's kind.</summary>
    protected virtual void Started(RedisBroker broker, RedisConnection connection)
    {
    }

    internal static ServiceProvider BuildNode(string configuration, Action<RedisBrokerOptions>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(TimeProvider.System);
        services.AddOptions<PushServiceOptions>();
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["PushService:Redis:Configuration"] = configuration,
            // The default: on a loaded 2-core CI machine a 1 s timeout let an ordinary SUBSCRIBE fail now and then.
            ["PushService:Redis:OperationTimeout"] = "00:00:02",
        }).Build();
        new PushGatewayBuilder(services, config).AddRedisBroker(configure);
        return services.BuildServiceProvider();
    }

    protected override async Task<IBroker> CreateBrokerAsync(IBrokerEventHandler handler)
    {
        var provider = BuildNode(Configuration, Configure);
        _providers.Add(provider);
        var broker = provider.GetRequiredService<RedisBroker>();
        await broker.StartAsync(handler, CancellationToken.None);
        Started(broker, provider.GetRequiredService<RedisConnection>());
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
