using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using PushService.FunctionalTests.Infrastructure;
using PushService.Gateway.Connections;
using PushService.Gateway.Transport.Sockets;

namespace PushService.FunctionalTests;

/// <summary>
/// The README test command runs this suite twice: with the defaults, and with every performance switch turned off
/// through the environment (<c>PushService__Server__BypassKestrelTransport=false</c> and the rest), so the library paths stay
/// correct. This says which run it is in, and that the switches the node runs with are the ones the environment set.
/// </summary>
public sealed class PerformanceSwitchTests
{
    private static bool SwitchedOn(string key) =>
        !string.Equals(Environment.GetEnvironmentVariable(key), "false", StringComparison.OrdinalIgnoreCase);

    [Fact]
    public async Task SwitchesInForce_AreTheOnesTheEnvironmentSet()
    {
        await using var host = GatewayHost.Start();

        var lean = host.Services.GetServices<IConnectionListenerFactory>().Any(f => f is LeanSocketTransportFactory);
        Assert.Equal(SwitchedOn("PushService__Server__BypassKestrelTransport"), lean);

        var scheduler = host.Services.GetRequiredService<SendScheduler>();
        if (!SwitchedOn("PushService__WebSocket__BatchSends"))
        {
            Assert.Equal(0, scheduler.BatchingLoops);
        }
        else if (SendBatch.TryCreate(8, out var refused) is { } probe)
        {
            // The kernel gives io_uring: every loop batches.
            probe.Dispose();
            Assert.Equal(scheduler.Loops, scheduler.BatchingLoops);
        }
        else
        {
            // It refuses it (a container's seccomp profile): the node sends socket by socket, and its metric says so.
            Assert.Equal(0, scheduler.BatchingLoops);
            Assert.False(string.IsNullOrEmpty(refused));
        }

        Assert.Contains("pushservice_send_batching_loops", await host.Http.GetStringAsync("/metrics"), StringComparison.Ordinal);
    }
}
