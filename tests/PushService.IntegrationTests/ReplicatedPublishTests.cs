using System.Globalization;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using PushService.Broker;
using PushService.Broker.Redis;
using PushService.Broker.Specification;
using PushService.IntegrationTests.Infrastructure;

namespace PushService.IntegrationTests;

/// <summary>
/// <c>PushService:Redis:MinReplicas</c> against a real primary and replica: a publish is answered only once the replica
/// holds it, and announced to the nodes only then; with no replica to hold it, it is refused and announced to nobody.
/// </summary>
public sealed class ReplicatedPublishTests : IAsyncLifetime
{
    private static readonly PublishOptions Keep = new() { HistorySize = 100, HistoryTtl = TimeSpan.FromMinutes(5) };
    private readonly List<ServiceProvider> _providers = [];
    private RedisServer _primary = null!;

    public async Task InitializeAsync() => _primary = await RedisServer.StartAsync();

    public async Task DisposeAsync()
    {
        foreach (var provider in _providers)
        {
            await provider.DisposeAsync();
        }

        await _primary.DisposeAsync();
    }

    private async Task<(RedisBroker Broker, BrokerSpecification.RecordingHandler Handler)> NodeAsync()
    {
        var provider = RedisSpecification.BuildNode(_primary.Configuration, o => (o.MinReplicas, o.ReplicaTimeout) = (1, TimeSpan.FromMilliseconds(300)));
        _providers.Add(provider);
        var handler = new BrokerSpecification.RecordingHandler();
        var broker = provider.GetRequiredService<RedisBroker>();
        await broker.StartAsync(handler, CancellationToken.None);
        return (broker, handler);
    }

    [Fact]
    public async Task WithoutAReplica_APublishIsRefused_AndAnnouncedToNobody_ButWithOne_ItIsAnsweredAndDelivered()
    {
        var (broker, handler) = await NodeAsync();
        Assert.True(broker.WaitsForReplicas);
        Assert.False(broker.PublishesDirectly);
        await broker.SubscribeAsync("r");

        var refused = await Assert.ThrowsAsync<BrokerUnavailableException>(async () => await broker.PublishAsync("r", "1"u8.ToArray(), Keep));
        Assert.Contains("0 of 1 replicas", refused.Message, StringComparison.Ordinal);

        await using var replica = await RedisServer.StartAsync("--replicaof", "127.0.0.1", _primary.Port.ToString(CultureInfo.InvariantCulture));
        await _primary.WaitForOnlineReplicasAsync(1, TimeSpan.FromSeconds(30));

        // The refused one was stored all the same: the replica has it too now, and the next publication's gap brings it.
        var answered = await broker.PublishAsync("r", "2"u8.ToArray(), Keep);
        Assert.Equal(2, answered.Position.Offset);
        var delivered = await handler.WaitForAsync("r", 2);
        Assert.Equal(["1", "2"], delivered.Select(p => Encoding.UTF8.GetString(p.Data.Span)));
        Assert.Equal(":2", await replica.CommandAsync("XLEN", "ps:{r}:s"));
    }
}
