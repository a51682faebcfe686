using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using PushService.Gateway.Transport.Sockets;

namespace PushService.Gateway.Transport;

/// <summary>
/// Kestrel connection middleware that takes WebSocket upgrades of <c>/ws</c> straight off the connection, before the
/// HTTP pipeline sees them, and runs the WebSocket on the connection's own pipes. An HTTP request, once upgraded, keeps
/// its whole per-request state alive for the socket's lifetime (the HTTP connection, request and response headers, the
/// HTTP context, the middleware chain's state machines, an activity, the upgrade stream): most of an idle connection's
/// memory, and a layer every push would be written through. Here a connection is Kestrel's transport plus the gateway's
/// own state; on the gateway's own transport, once answered, not even Kestrel's connection (<see cref="LeanSocketConnection.Detach"/>).
/// Everything else (other requests, upgrades that must be refused, anything not parsed with certainty) is
/// handed on untouched to the HTTP pipeline, whose <c>/ws</c> endpoint answers with the same rules.
/// </summary>
internal sealed partial class WebSocketConnectionMiddleware
{
    /// <summary>How long a new connection may take to send its request head before the HTTP pipeline gets it anyway.</summary>
    private static readonly TimeSpan HeadTimeout = TimeSpan.FromSeconds(10);

    private static readonly Action<object> AbortConnection = static state => ((ConnectionContext)state).Abort();

    private readonly ConnectionDelegate _next;
    private readonly IWebSocketAcceptor _endpoint;
    private readonly ILogger<WebSocketConnectionMiddleware> _logger;

    public WebSocketConnectionMiddleware(ConnectionDelegate next, IWebSocketAcceptor endpoint, ILogger<WebSocketConnectionMiddleware> logger)
    {
        _next = next;
        _endpoint = endpoint;
        _logger = logger;
    }

    public async Task OnConnectionAsync(ConnectionContext connection)
    {
        var request = await ReadUpgradeAsync(connection);
        if (request is null)
        {
            await _next(connection);
            return;
        }

        var response = request.SwitchingProtocolsResponse(_endpoint.SubProtocolFor(request));
        if (connection is LeanSocketConnection lean && lean.Detach())
        {
            // The WebSocket runs on without Kestrel's connection: this middleware returns, and with it Kestrel's frames
            // and bookkeeping go. Not in this frame's execution context either, whose logging scopes are Kestrel's.
            using (ExecutionContext.SuppressFlow())
            {
                _ = RunAsync(connection, response, detached: lean);
            }

            return;
        }

        await RunAsync(connection, response, detached: null);
    }

    /// <summary>
    /// Answers the upgrade with <paramref name="response"/>, opens the session and runs it in the transport's frame,
    /// whose end closes the session, gives back the place and closes <paramref name="detached"/>, the connection when it
    /// left Kestrel (<see cref="SessionRun"/>). Kestrel's connection is awaited here, as Kestrel disposes it when this
    /// returns; a detached one is not, so that no frame here stays suspended for the connection's whole life.
    /// </summary>
    private async Task RunAsync(ConnectionContext connection, byte[] response, LeanSocketConnection? detached)
    {
        var run = new SessionRun(this, connection, detached);
        IWebSocketSession session;
        try
        {
            await connection.Transport.Output.WriteAsync(response);
            session = _endpoint.Open(connection.Transport, AbortConnection, connection);
        }
        catch (Exception ex)
        {
            await run.OnRunEndedAsync(null, ex);
            return;
        }

        var running = session.Transport.RunAsync(session, run);
        if (detached is null)
        {
            await running;
        }
    }

    /// <summary>Logs how a run ended: Kestrel would log what escapes a connection it runs, and nobody awaits a detached one.</summary>
    private void EndedBy(ConnectionContext connection, Exception? failure)
    {
        if (failure is IOException or OperationCanceledException or InvalidOperationException)
        {
            Log.Ended(_logger, connection.ConnectionId, failure.Message);
        }
        else if (failure is not null)
        {
            Log.Failed(_logger, connection.ConnectionId, failure);
        }
    }

    /// <summary>When a WebSocket's run ends: its session leaves the node, its place is given back, a detached connection is closed.</summary>
    private sealed class SessionRun(WebSocketConnectionMiddleware middleware, ConnectionContext connection, LeanSocketConnection? detached) : IWebSocketRunOwner
    {
        /// <summary>Also for a run that never started (<paramref name="session"/> null: the answer or the open failed).</summary>
        public async ValueTask OnRunEndedAsync(IWebSocketSession? session, Exception? failure)
        {
            middleware.EndedBy(connection, failure);
            try
            {
                if (session is not null)
                {
                    await middleware._endpoint.CloseAsync(session);
                }
            }
            catch (Exception ex)
            {
                middleware.EndedBy(connection, ex);
            }
            finally
            {
                middleware._endpoint.Release();
                detached?.CloseDetached();
            }
        }
    }

    /// <summary>
    /// Reads the request head and returns it when it is an upgrade this node admits now, with the head consumed.
    /// Otherwise returns null with nothing consumed, so the HTTP pipeline reads the same bytes.
    /// </summary>
    private async Task<UpgradeRequest?> ReadUpgradeAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        using var timeout = new CancellationTokenSource(HeadTimeout);
        // A pipe's examined position may never move back; handing the bytes on unread means leaving it where it was.
        SequencePosition? examined = null;
        while (true)
        {
            System.IO.Pipelines.ReadResult result;
            try
            {
                result = await input.ReadAsync(timeout.Token);
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested)
            {
                // A slow client: the HTTP pipeline applies Kestrel's own timeouts to it.
                return null;
            }

            var buffer = result.Buffer;
            var parse = UpgradeRequest.TryParse(buffer, _endpoint.Path, out var request, out var end);
            if (parse == UpgradeRequest.Parse.NeedMoreData && !result.IsCompleted)
            {
                input.AdvanceTo(buffer.Start, buffer.End);
                examined = buffer.End;
                continue;
            }

            if (parse == UpgradeRequest.Parse.Upgrade && _endpoint.TryAdmit(request!, (connection.RemoteEndPoint as IPEndPoint)?.Address))
            {
                input.AdvanceTo(end);
                return request;
            }

            input.AdvanceTo(buffer.Start, examined ?? buffer.Start);
            return null;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(510, LogLevel.Debug, "WebSocket connection {ConnectionId} ended: {Message}")]
        public static partial void Ended(ILogger logger, string connectionId, string message);

        [LoggerMessage(511, LogLevel.Error, "WebSocket connection {ConnectionId} failed")]
        public static partial void Failed(ILogger logger, string connectionId, Exception exception);
    }
}
