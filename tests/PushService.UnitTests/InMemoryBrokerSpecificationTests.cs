using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PushService.Broker;
using PushService.Broker.InMemory;
using PushService.Broker.Specification;

namespace PushService.UnitTests;

/// <summary>The broker specification against the in-memory broker, with fake time.</summary>
public sealed class InMemoryBrokerSpecificationTests : BrokerSpecification
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private InMemoryBroker? _shared;

    protected override async Task<IBroker> CreateBrokerAsync(IBrokerEventHandler handler)
    {
        // One process is one backplane: a second broker in a test would be a second, unconnected node.
        Assert.Null(_shared);
        _shared = new InMemoryBroker(Options.Create(new InMemoryBrokerOptions()), _time, NullLogger<InMemoryBroker>.Instance);
        await _shared.StartAsync(handler, CancellationToken.None);
        return _shared;
    }

    protected override Task AdvanceTimeAsync(TimeSpan by)
    {
        _time.Advance(by);
        return Task.CompletedTask;
    }
}
