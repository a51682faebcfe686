using System.IO.Pipelines;
using System.Net;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PushService.Gateway.Configuration;
using PushService.Gateway.Hub;
using PushService.Gateway.Protocol;
using PushService.Gateway.Telemetry;
using PushService.Gateway.Transport;

namespace PushService.Gateway.Connections;

/// <summary>
/// Admits WebSockets on <c>/ws</c> and runs each connection until it closes. Upgrades normally arrive through
/// <see cref="Transport.WebSocketConnectionMiddleware"/>, straight off Kestrel's connection; this class also serves the
/// HTTP pipeline's <c>/ws</c> endpoint, which answers every request the middleware leaves alone: rejections (with problem
/// details), non-upgrade requests, and upgrades it cannot see (behind TLS, or after other requests on a kept-alive
/// connection), which it upgrades itself through <see cref="IHttpUpgradeFeature"/>. Both paths run the same connection.
/// </summary>
internal sealed partial class WebSocketEndpoint : IWebSocketAcceptor, IDisposable
{
    /// <summary>The WebSocket path of contract v1.</summary>
    public const string Path = "/ws";

    /// <summary>The optional subprotocol of contract v1.</summary>
    public const string SubProtocol = "push.v1.json";

    private readonly LocalHub _hub;
    private readonly ConnectionRegistry _connections;
    private readonly SendScheduler _sendScheduler;
    private readonly Func<ClientConnection, ReadOnlyMemory<byte>, ValueTask> _handleMessage;
    private readonly DrainState _drain;
    private readonly PushMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly PushServiceOptions _options;
    private readonly ConnectionSettings _settings;
    private readonly PartitionedRateLimiter<IPAddress?>? _attempts;
    private readonly ILogger<ClientConnection> _connectionLogger;
    private readonly ILogger<WebSocketEndpoint> _logger;

    public WebSocketEndpoint(LocalHub hub, ConnectionRegistry connections, SendScheduler sendScheduler, CommandHandler handler, DrainState drain, PushMetrics metrics, TimeProvider time,
        IOptions<PushServiceOptions> options, ILogger<ClientConnection> connectionLogger, ILogger<WebSocketEndpoint> logger)
    {
        _hub = hub;
        _connections = connections;
        _sendScheduler = sendScheduler;
        _handleMessage = handler.HandleAsync;
        _drain = drain;
        _metrics = metrics;
        _time = time;
        _options = options.Value;
        _settings = new ConnectionSettings(_options.Limits.ClientQueueMaxBytes, _options.Limits.ClientQueueMaxMessages, _options.Limits.MaxMessageBytes)
        {
            Metrics = metrics,
        };
        var attemptsPerMinute = _options.Limits.ConnectionAttemptsPerIpPerMinute;
        _attempts = attemptsPerMinute <= 0 ? null : PartitionedRateLimiter.Create<IPAddress?, string>(address =>
            RateLimitPartition.GetFixedWindowLimiter(address?.ToString() ?? "unknown", _ => new FixedWindowRateLimiterOptions
            {
                PermitLimit = attemptsPerMinute,
                Window = TimeSpan.FromMinutes(1),
                QueueLimit = 0,
            }));
        _connectionLogger = connectionLogger;
        _logger = logger;
    }

    /// <inheritdoc />
    string IWebSocketAcceptor.Path => Path;

    /// <inheritdoc />
    public bool TryAdmit(UpgradeRequest request, IPAddress? remote)
    {
        if (_drain.IsDraining || !OriginPolicy.IsAllowed(request.Origin, request.Host, _options.WebSocket))
        {
            return false;
        }

        if (!TryReserve())
        {
            return false;
        }

        if (_attempts is not null)
        {
            using var lease = _attempts.AttemptAcquire(remote);
            if (!lease.IsAcquired)
            {
                Release();
                return false;
            }
        }

        return true;
    }

    /// <summary>Serves <c>/ws</c> in the HTTP pipeline.</summary>
    public async Task HandleAsync(HttpContext context)
    {
        if (_attempts is not null)
        {
            using var lease = _attempts.AttemptAcquire(context.Connection.RemoteIpAddress);
            if (!lease.IsAcquired)
            {
                _metrics.Rejected(RejectionReasons.Rate, fromApi: false);
                var retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(1);
                await ApiProblems.RetryLater(StatusCodes.Status429TooManyRequests, "Too many requests", retryAfter,
                    "PushService:Limits:ConnectionAttemptsPerIpPerMinute was reached; retry after the Retry-After delay.").ExecuteAsync(context);
                return;
            }
        }

        var request = UpgradeRequest.FromHttp(context.Request);
        var upgrade = context.Features.Get<IHttpUpgradeFeature>();
        if (request is null || upgrade is not { IsUpgradableRequest: true })
        {
            await Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "WebSocket upgrade expected",
                detail: "Connect to /ws with a WebSocket client (HTTP/1.1 upgrade, version 13).").ExecuteAsync(context);
            return;
        }

        if (_drain.IsDraining)
        {
            await ApiProblems.Draining().ExecuteAsync(context);
            return;
        }

        if (!TryReserve())
        {
            _metrics.Rejected(RejectionReasons.Limit, fromApi: false);
            await ApiProblems.NodeFull().ExecuteAsync(context);
            return;
        }

        try
        {
            if (!OriginPolicy.IsAllowed(request.Origin, request.Host, _options.WebSocket))
            {
                Log.OriginRejected(_logger, request.Origin ?? "");
                _metrics.Rejected(RejectionReasons.Origin, fromApi: false);
                await ApiProblems.OriginNotAllowed().ExecuteAsync(context);
                return;
            }

            var subProtocol = SubProtocolFor(request);
            context.Response.Headers.Connection = "Upgrade";
            context.Response.Headers.Upgrade = "websocket";
            context.Response.Headers.SecWebSocketAccept = UpgradeRequest.AcceptKey(request.Key);
            if (subProtocol is not null)
            {
                context.Response.Headers.SecWebSocketProtocol = subProtocol;
            }

            var stream = await upgrade.UpgradeAsync();
            var transport = new StreamTransport(stream);
            try
            {
                var connection = Open(transport, static state => ((HttpContext)state).Abort(), context);
                try
                {
                    await connection.RunAsync();
                }
                finally
                {
                    await CloseAsync(connection);
                }
            }
            finally
            {
                await transport.CompleteAsync();
            }
        }
        finally
        {
            Release();
        }
    }

    /// <summary>
    /// Registers an admitted connection, to be run (<see cref="ClientConnection.RunAsync"/>) and then closed with
    /// <see cref="CloseAsync(ClientConnection)"/>. <paramref name="abort"/> is called with <paramref name="abortState"/>
    /// to end the underlying connection at once (a static delegate and a state: no delegate allocated per connection).
    /// </summary>
    public ClientConnection Open(IDuplexPipe transport, Action<object> abort, object abortState)
    {
        var connection = new ClientConnection(transport, abort, abortState, NewConnectionId(), _settings, _sendScheduler.Assign(), _handleMessage, _time, _connectionLogger)
        {
            CommandsPerSecond = _options.Limits.CommandsPerSecond,
        };
        _connections.Add(connection);
        _metrics.ConnectionOpened();
        return connection;
    }

    /// <summary>After a connection's run ended: leaves its channels and the node, and counts how it closed.</summary>
    public async ValueTask CloseAsync(ClientConnection connection)
    {
        await _hub.Subscriptions.EndAllAsync(connection);
        _connections.Remove(connection);
        _metrics.ConnectionClosed(connection.CloseCode, connection.ClosedBy);
    }

    IWebSocketSession IWebSocketAcceptor.Open(IDuplexPipe pipe, Action<object> abort, object abortState) => Open(pipe, abort, abortState);

    ValueTask IWebSocketAcceptor.CloseAsync(IWebSocketSession session) => CloseAsync((ClientConnection)session);

    /// <summary>Takes one of the node's places, which WebSockets and event streams share; false when the node is full.</summary>
    private bool TryReserve() => _connections.TryTakePlace(_options.Limits.MaxConnections);

    /// <summary>The subprotocol to answer with: contract v1's when the client asked for it, else none.</summary>
    public static string? SubProtocolFor(UpgradeRequest request) => request.Requests(SubProtocol) ? SubProtocol : null;

    string? IWebSocketAcceptor.SubProtocolFor(UpgradeRequest request) => SubProtocolFor(request);

    /// <summary>Gives back a place taken by <see cref="TryReserve"/> or <see cref="TryAdmit"/>.</summary>
    public void Release() => _connections.ReleasePlace();

    public void Dispose() => _attempts?.Dispose();

    private static string NewConnectionId() => Guid.NewGuid().ToString("N");

    /// <summary>An upgraded HTTP stream as a pipe pair, so both accept paths run the same framing code.</summary>
    private sealed class StreamTransport(Stream stream) : IDuplexPipe
    {
        public PipeReader Input { get; } = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));

        public PipeWriter Output { get; } = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));

        public async ValueTask CompleteAsync()
        {
            await Input.CompleteAsync();
            await Output.CompleteAsync();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(500, LogLevel.Information, "Rejected a WebSocket from origin '{Origin}'.")]
        public static partial void OriginRejected(ILogger logger, string origin);
    }
}

/// <summary>The WebSocket Origin check that stops cross-site WebSocket hijacking.</summary>
internal static class OriginPolicy
{
    public static bool IsAllowed(string? origin, string? host, WebSocketEndpointOptions options)
    {
        if (string.IsNullOrEmpty(origin))
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
            && string.Equals(uri.Authority, host, StringComparison.OrdinalIgnoreCase);
    }
}
