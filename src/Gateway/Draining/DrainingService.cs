using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PushService.Gateway.Configuration;
using PushService.Gateway.Hub;
using PushService.Gateway.Protocol;

namespace PushService.Gateway.Draining;

/// <summary>
/// Drains the node on shutdown: as soon as stopping starts, readiness fails and every client gets a
/// <c>disconnect</c> push and close 1001, so its SDK reconnects at once to another node; stragglers are
/// aborted after the close timeout so shutdown never hangs on a dead peer.
/// </summary>
internal sealed partial class DrainingService : IHostedService
{
    private readonly DrainState _state;
    private readonly LocalHub _hub;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly TimeSpan _closeTimeout;
    private readonly TimeProvider _time;
    private readonly ILogger<DrainingService> _logger;
    private CancellationTokenRegistration _registration;

    public DrainingService(DrainState state, LocalHub hub, IHostApplicationLifetime lifetime, IOptions<PushServiceOptions> options,
        TimeProvider time, ILogger<DrainingService> logger)
    {
        _state = state;
        _hub = hub;
        _lifetime = lifetime;
        _closeTimeout = options.Value.Limits.CloseTimeout;
        _time = time;
        _logger = logger;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // ApplicationStopping fires before the server stops waiting on requests: close the sockets first.
        _registration = _lifetime.ApplicationStopping.Register(BeginDrain);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        BeginDrain();
        var deadline = _time.GetUtcNow() + _closeTimeout;
        while (_hub.ConnectionCount > 0 && _time.GetUtcNow() < deadline && !cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(50), _time, CancellationToken.None);
        }

        foreach (var connection in _hub.Connections)
        {
            connection.Abort();
        }

        await _registration.DisposeAsync();
    }

    private void BeginDrain()
    {
        if (_state.IsDraining)
        {
            return;
        }

        _state.Start();
        Log.Draining(_logger, _hub.ConnectionCount);
        foreach (var connection in _hub.Connections)
        {
            connection.RequestClose(Disconnect.GoingAway);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(400, LogLevel.Information, "Draining: closing {Connections} connections with 1001 so they reconnect elsewhere.")]
        public static partial void Draining(ILogger logger, int connections);
    }
}
