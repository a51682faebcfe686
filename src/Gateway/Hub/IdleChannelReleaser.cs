using Microsoft.Extensions.Hosting;

namespace PushService.Gateway.Hub;

/// <summary>
/// Releases the broker subscriptions of channels whose last local subscriber has been gone for the unsubscribe delay
/// (<see cref="LocalHub.ReleaseIdleChannelsAsync"/>). One timer for all channels, as the connection heartbeat is one for
/// all connections.
/// </summary>
internal sealed class IdleChannelReleaser(LocalHub hub, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (hub.UnsubscribeDelay <= TimeSpan.Zero)
        {
            return;
        }

        // A channel keeps its subscription for the delay plus at most a quarter of it (a second at most).
        var period = TimeSpan.FromTicks(Math.Clamp(hub.UnsubscribeDelay.Ticks / 4, TimeSpan.TicksPerMillisecond * 100, TimeSpan.TicksPerSecond));
        using var timer = new PeriodicTimer(period, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await hub.ReleaseIdleChannelsAsync();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
