using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PushService.Gateway.Configuration;
using PushService.Gateway.Connections;
using PushService.Gateway.Protocol;

namespace PushService.Gateway.Draining;

/// <summary>
/// Drains the node on shutdown. As soon as stopping starts, readiness fails and new upgrades are refused; after
/// <see cref="DrainOptions.Delay"/> the clients get a <c>disconnect</c> push and close 1001 in waves spread over
/// <see cref="DrainOptions.Window"/>, so the nodes that take them over see a slice at a time rather than every client
/// of this node in one burst (each SDK still reconnects at once when its own close comes). Stragglers are aborted after
/// the close timeout so shutdown never hangs on a dead peer. REST calls are served until the server stops, after this.
/// </summary>
/// <remarks>
/// The waves run in <see cref="StoppingAsync"/>, which the host awaits before it stops any hosted service: node
/// heartbeats, pings and the broker keep working while clients are still here, and Kestrel keeps serving.
/// </remarks>
internal sealed partial class DrainingService : IHostedLifecycleService
{
    private readonly DrainState _state;
    private readonly ConnectionRegistry _connections;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly DrainOptions _options;
    private readonly TimeSpan _closeTimeout;
    private readonly TimeProvider _time;
    private readonly ILogger<DrainingService> _logger;
    private CancellationTokenRegistration _registration;

    public DrainingService(DrainState state, ConnectionRegistry connections, IHostApplicationLifetime lifetime, IOptions<PushServiceOptions> options,
        TimeProvider time, ILogger<DrainingService> logger)
    {
        _state = state;
        _connections = connections;
        _lifetime = lifetime;
        _options = options.Value.Drain;
        _closeTimeout = options.Value.Limits.CloseTimeout;
        _time = time;
        _logger = logger;
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // SIGTERM fires ApplicationStopping before the host starts stopping services: readiness turns 503 that moment.
        _registration = _lifetime.ApplicationStopping.Register(BeginDrain);
        return Task.CompletedTask;
    }

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Closes the clients in waves; <paramref name="cancellationToken"/> is the host's shutdown timeout.</summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        BeginDrain();
        try
        {
            if (_connections.Count > 0)
            {
                await Task.Delay(_options.Delay, _time, cancellationToken);
                await CloseInWavesAsync(cancellationToken);

                // An upgrade admitted just before readiness turned registers after the snapshot: it goes now.
                CloseAll();
            }

            await UntilGoneAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Out of time: whoever is left is closed and then aborted below.
            CloseAll();
        }

        AbortAll();
        try
        {
            // Aborted connections leave their channels and the node on their own threads, and WebSockets on the direct
            // path run outside Kestrel's connection tracking: nothing else keeps the host from stopping the broker under them.
            await UntilGoneAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The host's shutdown timeout: it stops now.
        }
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        // Stopped without StoppingAsync (a host that does not know lifecycle services): still leave no client behind.
        BeginDrain();
        AbortAll();
        return _registration.DisposeAsync().AsTask();
    }

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task CloseInWavesAsync(CancellationToken cancellationToken)
    {
        // A snapshot: no client joins a draining node. Shuffled, so each wave takes a fair share of users, channels and
        // connection ages rather than whoever connected first.
        var connections = _connections.Sessions.ToArray();
        Random.Shared.Shuffle(connections);
        var waves = _options.Window > TimeSpan.Zero ? Math.Min(_options.Waves, Math.Max(1, connections.Length)) : 1;
        var spacing = _options.Window / waves;
        Log.Draining(_logger, connections.Length, waves, _options.Window);
        var start = _time.GetTimestamp();
        for (var wave = 0; wave < waves; wave++)
        {
            var wait = spacing * wave - _time.GetElapsedTime(start);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, _time, cancellationToken);
            }

            var from = (int)((long)connections.Length * wave / waves);
            var to = (int)((long)connections.Length * (wave + 1) / waves);
            for (var i = from; i < to; i++)
            {
                connections[i].RequestClose(Disconnect.GoingAway);
            }
        }
    }

    private void BeginDrain()
    {
        if (_state.IsDraining)
        {
            return;
        }

        _state.Start();
        Log.Started(_logger, _connections.Count, _options.Delay);
    }

    private void CloseAll()
    {
        foreach (var connection in _connections.Sessions)
        {
            connection.RequestClose(Disconnect.GoingAway);
        }
    }

    /// <summary>Waits until every connection has left the node, a close timeout at most.</summary>
    private async Task UntilGoneAsync(CancellationToken cancellationToken)
    {
        var deadline = _time.GetUtcNow() + _closeTimeout;
        while (_connections.Count > 0 && _time.GetUtcNow() < deadline)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(50), _time, cancellationToken);
        }
    }

    private void AbortAll()
    {
        foreach (var connection in _connections.Sessions)
        {
            connection.Abort();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(400, LogLevel.Information, "Draining: readiness is off and upgrades are refused; {Connections} connections stay for {Delay} before they are closed.")]
        public static partial void Started(ILogger logger, int connections, TimeSpan delay);

        [LoggerMessage(401, LogLevel.Information, "Draining: closing {Connections} connections with 1001 in {Waves} waves over {Window}.")]
        public static partial void Draining(ILogger logger, int connections, int waves, TimeSpan window);
    }
}
