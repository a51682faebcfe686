using System.Net.WebSockets;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PushService.Gateway.Configuration;
using PushService.Gateway.Draining;
using PushService.Gateway.Hub;
using PushService.Gateway.Telemetry;

namespace PushService.Gateway.Connections;

/// <summary>Accepts a WebSocket on <c>/ws</c> and runs the connection until it closes.</summary>
internal sealed partial class WebSocketEndpoint
{
    /// <summary>The optional subprotocol of contract v1.</summary>
    public const string SubProtocol = "push.v1.json";

    private readonly LocalHub _hub;
    private readonly SendScheduler _sendScheduler;
    private readonly CommandHandler _handler;
    private readonly DrainState _drain;
    private readonly PushMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly PushServiceOptions _options;
    private readonly ConnectionSettings _settings;
    private readonly ILogger<ClientConnection> _connectionLogger;
    private readonly ILogger<WebSocketEndpoint> _logger;
    private int _admitted;

    public WebSocketEndpoint(LocalHub hub, SendScheduler sendScheduler, CommandHandler handler, DrainState drain, PushMetrics metrics, TimeProvider time,
        IOptions<PushServiceOptions> options, ILogger<ClientConnection> connectionLogger, ILogger<WebSocketEndpoint> logger)
    {
        _hub = hub;
        _sendScheduler = sendScheduler;
        _handler = handler;
        _drain = drain;
        _metrics = metrics;
        _time = time;
        _options = options.Value;
        _settings = new ConnectionSettings(_options.Limits.ClientQueueMaxBytes, _options.Limits.ClientQueueMaxMessages, _options.Limits.MaxMessageBytes);
        _connectionLogger = connectionLogger;
        _logger = logger;
    }

    public async Task HandleAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "WebSocket upgrade expected",
                detail: "Connect to /ws with a WebSocket client.").ExecuteAsync(context);
            return;
        }

        if (_drain.IsDraining)
        {
            context.Response.Headers.RetryAfter = "1";
            await Results.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Node is draining",
                detail: "This node is shutting down; connect to another node.").ExecuteAsync(context);
            return;
        }

        // The place is taken before the upgrade, so a storm of simultaneous upgrades cannot overshoot the limit.
        var admitted = Interlocked.Increment(ref _admitted);
        try
        {
            if (_options.Limits.MaxConnections > 0 && admitted > _options.Limits.MaxConnections)
            {
                context.Response.Headers.RetryAfter = "5";
                await Results.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Node is full",
                    detail: "This node holds PushService:Limits:MaxConnections connections; connect to another node.").ExecuteAsync(context);
                return;
            }

            await AcceptAsync(context);
        }
        finally
        {
            Interlocked.Decrement(ref _admitted);
        }
    }

    private async Task AcceptAsync(HttpContext context)
    {
        if (!OriginPolicy.IsAllowed(context.Request, _options.WebSocket))
        {
            Log.OriginRejected(_logger, context.Request.Headers.Origin.ToString());
            await Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Origin not allowed",
                detail: "The Origin of this request is not in PushService:WebSocket:AllowedOrigins.").ExecuteAsync(context);
            return;
        }

        var subProtocol = context.WebSockets.WebSocketRequestedProtocols.Contains(SubProtocol) ? SubProtocol : null;
        using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
        {
            SubProtocol = subProtocol,
            // The heartbeat sends protocol-level pings; WebSocket keep-alive frames would only duplicate them.
            KeepAliveInterval = TimeSpan.Zero,
        });

        var commandsPerSecond = _options.Limits.CommandsPerSecond;
        using var commandLimiter = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = commandsPerSecond * 2,
            TokensPerPeriod = commandsPerSecond,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
            AutoReplenishment = false,
            QueueLimit = 0,
        });
        var connection = new ClientConnection(socket, NewConnectionId(), _settings, _sendScheduler.Assign(), _time, _connectionLogger)
        {
            Hub = _hub,
            CommandLimiter = commandLimiter,
        };
        _hub.Add(connection);
        _metrics.ConnectionOpened();
        try
        {
            await connection.RunAsync(_handler.HandleAsync, context.RequestAborted);
        }
        finally
        {
            foreach (var subscription in connection.Subscriptions.Values)
            {
                await _hub.RemoveAsync(subscription);
            }

            connection.Subscriptions.Clear();
            _hub.Remove(connection);
            _metrics.ConnectionClosed();
            if (connection.ClosedWith is { } disconnect)
            {
                _metrics.Disconnected(disconnect.Code);
            }
        }
    }

    private static string NewConnectionId() => Guid.NewGuid().ToString("N");

    private static partial class Log
    {
        [LoggerMessage(500, LogLevel.Information, "Rejected a WebSocket from origin '{Origin}'.")]
        public static partial void OriginRejected(ILogger logger, string origin);
    }
}

/// <summary>The WebSocket Origin check that stops cross-site WebSocket hijacking.</summary>
internal static class OriginPolicy
{
    public static bool IsAllowed(HttpRequest request, WebSocketEndpointOptions options)
    {
        var origin = request.Headers.Origin.ToString();
        if (origin.Length == 0)
        {
            // Only browsers must send Origin; servers and native apps usually do not.
            return !options.RequireOrigin;
        }

        foreach (var allowed in options.AllowedOrigins)
        {
            if (allowed == "*" || string.Equals(allowed.TrimEnd('/'), origin.TrimEnd('/'), StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        // A page served from this very host may always connect.
        return Uri.TryCreate(origin, UriKind.Absolute, out var uri)
            && string.Equals(uri.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase);
    }
}
