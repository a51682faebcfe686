using System.Diagnostics.Metrics;
using System.IO.Pipelines;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PushService.Broker.InMemory;
using PushService.Gateway.Configuration;
using PushService.Gateway.Connections;
using PushService.Gateway.Hub;
using PushService.Gateway.Telemetry;

namespace PushService.UnitTests;

/// <summary>
/// The heartbeat's server pings, on a fake clock ticked second by second as the heartbeat's timer would: connections
/// opened in the same instant are pinged over the second half of the first interval rather than in one tick, and each
/// an interval after its last ping from then on. Each connection reads what the test writes into its input pipe, so a
/// client's pong is a frame written there.
/// </summary>
public sealed class ConnectionHeartbeatTests : IAsyncLifetime
{
    private const int Count = 200;
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(20);

    /// <summary>A masked, empty pong frame, as a client sends one.</summary>
    private static readonly byte[] Pong = [0x8A, 0x80, 0, 0, 0, 0];

    private readonly FakeTimeProvider _time = new();
    private readonly SendScheduler.SendLoop _loop = new(TimeSpan.Zero, TimeProvider.System);
    private readonly List<(ClientConnection Connection, Pipe Input, Task Reading)> _connections = [];
    private ConnectionHeartbeat _heartbeat = null!;

    public Task InitializeAsync()
    {
        var options = new PushServiceOptions();
        options.WebSocket.PingInterval = Interval;
        options.WebSocket.PongTimeout = TimeSpan.FromSeconds(10);
        var meters = new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>();
        var broker = new InMemoryBroker(Options.Create(new InMemoryBrokerOptions()), _time, NullLogger<InMemoryBroker>.Instance);
        var hub = new LocalHub(broker, new InMemoryPresenceStore(_time), Options.Create(options), new PushMetrics(meters), _time,
            new NodeIdentity(Options.Create(options), _time), NullLogger<LocalHub>.Instance);
        var registry = new ConnectionRegistry(new PushMetrics(meters));
        _heartbeat = new ConnectionHeartbeat(registry, hub, _time, Options.Create(options));

        for (var i = 0; i < Count; i++)
        {
            var input = new Pipe();
            var output = new Pipe();
            var connection = new ClientConnection(new PipePair(input.Reader, output.Writer), static _ => { }, output, $"c{i}",
                new ConnectionSettings(1 << 20, 1000, 65536), _loop, static (_, _) => ValueTask.CompletedTask, _time, NullLogger.Instance);
            connection.MarkConnected("", null, null, null);
            registry.Add(connection);
            _connections.Add((connection, input, connection.RunAsync()));
        }

        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var (_, input, _) in _connections)
        {
            await input.Writer.CompleteAsync();
        }

        await Task.WhenAll(_connections.Select(c => c.Reading)).WaitAsync(TimeSpan.FromSeconds(20));
        await _loop.DisposeAsync();
    }

    [Fact]
    public async Task ConnectionsOpenedTogether_ArePingedOverTheSecondHalfOfTheInterval_ThenEachAnIntervalAfterItsLast()
    {
        var pings = _connections.ToDictionary(c => c.Connection, _ => new List<int>());
        var lastSeen = _connections.ToDictionary(c => c.Connection, _ => 0L);
        var firstPingsPerSecond = new int[3 * (int)Interval.TotalSeconds];
        for (var second = 1; second < firstPingsPerSecond.Length; second++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            _heartbeat.Tick(_time.GetUtcNow().UtcTicks);
            var answered = new List<ClientConnection>();
            foreach (var (connection, input, _) in _connections)
            {
                var pingedAt = connection.PingSentAtTicks;
                if (pingedAt == lastSeen[connection])
                {
                    continue;
                }

                lastSeen[connection] = pingedAt;
                if (pings[connection].Count == 0)
                {
                    firstPingsPerSecond[second]++;
                }

                pings[connection].Add(second);

                // The client answers at once; the connection reads it on its own and counts it as a sign of life.
                await input.Writer.WriteAsync(Pong);
                answered.Add(connection);
            }

            // Before the next tick, as a client's pong comes well within the pong timeout.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (answered.Any(c => c.LastActivityTicks < c.PingSentAtTicks))
            {
                Assert.True(DateTime.UtcNow < deadline, "a pong was not read");
                await Task.Delay(1);
            }
        }

        var half = (int)Interval.TotalSeconds / 2;
        Assert.All(pings.Values, seconds => Assert.InRange(seconds[0], half + 1, 2 * half));
        Assert.All(pings.Values, seconds => Assert.Equal(seconds[0] + (2 * half), seconds[1]));
        Assert.All(_connections, c => Assert.Null(c.Connection.ClosedWith));

        // Spread at random over ten ticks: about 20 a tick. All in one tick was the behaviour before the spread.
        Assert.True(firstPingsPerSecond.Max() <= Count / 4, $"first pings per second: {string.Join(", ", firstPingsPerSecond)}");
        Assert.True(firstPingsPerSecond.Count(n => n > 0) >= half - 2, $"first pings per second: {string.Join(", ", firstPingsPerSecond)}");
    }
}
