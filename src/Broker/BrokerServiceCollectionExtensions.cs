using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Polly;
using Polly.CircuitBreaker;
using PushService.Broker;
using PushService.Broker.Control;
using PushService.Broker.InMemory;
using PushService.Broker.Redis;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Registers a broker with what comes with it (presence store, control plane), replacing any registered before: the
/// single-node in-memory one or the Redis backplane. The gateway's <c>AddPushGateway</c> picks one from its configuration.
/// </summary>
public static class BrokerServiceCollectionExtensions
{
    /// <summary>The single-node in-memory broker, its presence store and a local control plane.</summary>
    public static IServiceCollection AddInMemoryPushBroker(this IServiceCollection services)
    {
        services.AddOptions<InMemoryBrokerOptions>().ValidateDataAnnotations().ValidateOnStart();
        services.RemoveAll<IBroker>();
        services.RemoveAll<IPresenceStore>();
        services.RemoveAll<IControlPlane>();
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<IControlPlane, LocalControlPlane>();
        services.AddSingleton<InMemoryBroker>();
        services.AddSingleton<IBroker>(sp => sp.GetRequiredService<InMemoryBroker>());
        services.AddSingleton<IPresenceStore, InMemoryPresenceStore>();
        return services;
    }

    /// <summary>
    /// The Redis backplane, its options bound from <paramref name="section"/> (<c>Configuration</c>, <c>KeyPrefix</c>,
    /// <c>OperationTimeout</c>, <c>BreakDuration</c>, <c>PositionTtl</c>, <c>ShardedPubSub</c>, <c>DedicatedIoThreads</c>, …)
    /// and validated at start, its resilience pipeline, the shared multiplexer, presence and the control plane on Redis.
    /// </summary>
    public static IServiceCollection AddRedisPushBroker(this IServiceCollection services, IConfiguration section, Action<RedisBrokerOptions>? configure = null)
    {
        services.AddOptions<RedisBrokerOptions>().Bind(section).ValidateDataAnnotations().ValidateOnStart();
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddSingleton<CircuitBreakerStateProvider>();
        services.AddResiliencePipeline(RedisBroker.PipelineName, static (pipeline, context) => RedisBroker.ConfigurePipeline(
            pipeline,
            context.ServiceProvider.GetRequiredService<IOptions<RedisBrokerOptions>>().Value,
            context.ServiceProvider.GetRequiredService<CircuitBreakerStateProvider>()));
        services.RemoveAll<IBroker>();
        services.RemoveAll<IPresenceStore>();
        services.RemoveAll<IControlPlane>();
        services.TryAddSingleton<RedisConnection>();
        services.TryAddSingleton<RedisBroker>();
        services.AddSingleton<IBroker>(sp => sp.GetRequiredService<RedisBroker>());
        services.AddSingleton<IPresenceStore, RedisPresenceStore>();
        services.AddSingleton<IControlPlane, RedisControlPlane>();
        return services;
    }
}
