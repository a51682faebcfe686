using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PushService.Broker;
using PushService.Broker.InMemory;
using PushService.Broker.Specification;

namespace PushService.UnitTests;

/// <summary>What only the in-memory broker does: expiry of idempotency keys and of idle channel state.</summary>
public sealed class InMemoryBrokerTests
{
    private readonly FakeTimeProvider _time = new();

    private InMemoryBroker NewBroker(InMemoryBrokerOptions? options = null) =>
        new(Options.Create(options ?? new InMemoryBrokerOptions()), _time, NullLogger<InMemoryBroker>.Instance);

    private static readonly PublishOptions Keep = new() { HistorySize = 10, HistoryTtl = TimeSpan.FromMinutes(1) };

    [Fact]
    public async Task IdempotencyKey_AfterItsWindow_PublishesAgain()
    {
        await using var broker = NewBroker(new InMemoryBrokerOptions { IdempotencyWindow = TimeSpan.FromMinutes(5) });
        await broker.StartAsync(new BrokerSpecification.RecordingHandler(), CancellationToken.None);
        var first = await broker.PublishAsync("c", Encoding.UTF8.GetBytes("1"), Keep with { IdempotencyKey = "k" });
        _time.Advance(TimeSpan.FromMinutes(4));
        Assert.True((await broker.PublishAsync("c", Encoding.UTF8.GetBytes("1"), Keep with { IdempotencyKey = "k" })).Duplicate);
        _time.Advance(TimeSpan.FromMinutes(2));
        var later = await broker.PublishAsync("c", Encoding.UTF8.GetBytes("1"), Keep with { IdempotencyKey = "k" });
        Assert.False(later.Duplicate);
        Assert.Equal(first.Position.Offset + 1, later.Position.Offset);
    }

    [Fact]
    public async Task Sweep_DropsIdleChannels_ButKeepsSubscribedOnes()
    {
        await using var broker = NewBroker(new InMemoryBrokerOptions { PositionTtl = TimeSpan.FromHours(1) });
        await broker.StartAsync(new BrokerSpecification.RecordingHandler(), CancellationToken.None);
        await broker.PublishAsync("idle", Encoding.UTF8.GetBytes("1"), Keep);
        await broker.PublishAsync("watched", Encoding.UTF8.GetBytes("1"), Keep);
        await broker.SubscribeAsync("watched");
        var epochBefore = (await broker.HistoryAsync("idle", new HistoryQuery { Limit = 0 })).Position.Epoch;

        _time.Advance(TimeSpan.FromMinutes(30));
        broker.Sweep();
        Assert.Equal(2, broker.StreamCount);

        _time.Advance(TimeSpan.FromHours(1));
        broker.Sweep();
        Assert.Equal(1, broker.StreamCount);

        // An idle channel whose state expired starts a new epoch, exactly as a lost Redis stream would.
        var after = await broker.HistoryAsync("idle", new HistoryQuery { Limit = 0 });
        Assert.NotEqual(epochBefore, after.Position.Epoch);
        Assert.Equal(0, after.Position.Offset);
    }
}
