using Microsoft.Extensions.Hosting;
using PushService.Broker;
using PushService.Gateway.Hub;

namespace PushService.Gateway;

/// <summary>Starts the broker with the local hub as its event handler, before the server takes traffic.</summary>
/// <remarks>The container disposes the broker after the server has stopped, so delivery runs until the last connection is gone.</remarks>
internal sealed class BrokerHostedService(IBroker broker, LocalHub hub) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => broker.StartAsync(hub, cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
