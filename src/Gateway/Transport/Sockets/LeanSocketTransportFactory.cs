using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;

namespace PushService.Gateway.Transport.Sockets;

/// <summary>
/// Kestrel's transport for TCP endpoints when <c>PushService:Server:BypassKestrelTransport</c> is on (the default): connections
/// that hold no buffer and no pipe while idle (<see cref="LeanSocketConnection"/>). Kestrel asks the last registered
/// factory first; endpoints this one does not take (Unix sockets, file handles, named pipes) go to Kestrel's own
/// transport, which knows their particulars (a Unix socket's file, for one).
/// </summary>
internal sealed class LeanSocketTransportFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    /// <summary>Kestrel's default listen backlog.</summary>
    private const int Backlog = 512;

    private readonly ILogger<LeanSocketListener> _logger;
    private readonly ReadinessPoller? _poller;

    /// <summary>Connections wait for input through the process's <see cref="ReadinessPoller"/> (the runtime where there is none).</summary>
    public LeanSocketTransportFactory(ILogger<LeanSocketListener> logger)
        : this(logger, ReadinessPoller.Shared)
    {
    }

    /// <summary>Connections wait for input through <paramref name="poller"/>, or through the runtime when it is null.</summary>
    internal LeanSocketTransportFactory(ILogger<LeanSocketListener> logger, ReadinessPoller? poller)
    {
        _logger = logger;
        _poller = poller;
    }

    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        Socket socket;
        try
        {
            // Kestrel's own way to make a bound listen socket (dual mode for IPv6Any, and so on).
            socket = SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            // The exception Kestrel's address binding expects (it falls back, or reports the port as taken).
            throw new AddressInUseException(ex.Message, ex);
        }

        try
        {
            socket.Listen(Backlog);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new ValueTask<IConnectionListener>(new LeanSocketListener(socket, socket.LocalEndPoint ?? endpoint, _poller, _logger));
    }
}

/// <summary>Accepts connections for <see cref="LeanSocketTransportFactory"/>.</summary>
internal sealed partial class LeanSocketListener : IConnectionListener
{
    private static readonly TimeSpan AcceptRetryDelay = TimeSpan.FromMilliseconds(50);

    private readonly Socket _socket;
    private readonly ReadinessPoller? _poller;
    private readonly ILogger _logger;

    public LeanSocketListener(Socket socket, EndPoint endpoint, ReadinessPoller? poller, ILogger logger)
    {
        _socket = socket;
        _poller = poller;
        EndPoint = endpoint;
        _logger = logger;
    }

    public EndPoint EndPoint { get; }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Socket accepted;
            try
            {
                accepted = await _socket.AcceptAsync(cancellationToken);
            }
            catch (ObjectDisposedException)
            {
                return null;
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted)
            {
                // Unbound.
                return null;
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
            {
                // A client that reset before it was accepted: take the next.
                continue;
            }
            catch (SocketException ex)
            {
                // Out of file descriptors or memory: accepting again at once would only spin. Pause, then take the next.
                Log.AcceptFailed(_logger, EndPoint.ToString() ?? "", ex.SocketErrorCode);
                await Task.Delay(AcceptRetryDelay, cancellationToken);
                continue;
            }

            try
            {
                if (accepted.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
                {
                    // Kestrel's default: a push is small and must not wait for Nagle's algorithm.
                    accepted.NoDelay = true;
                }

                // Reads after a wait and flushes try the socket without blocking (and wait asynchronously only when
                // they must): on Linux each call says so itself, elsewhere the socket must (NonBlockingCalls).
                if (!NonBlockingCalls.Native)
                {
                    accepted.Blocking = false;
                }
            }
            catch (SocketException)
            {
                // Reset between the accept and its options: take the next. (Anything thrown from here would stop
                // Kestrel's accept loop for good.)
                accepted.Dispose();
                continue;
            }

            return new LeanSocketConnection(accepted, _poller);
        }
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }

    private static partial class Log
    {
        [LoggerMessage(520, LogLevel.Warning, "Accepting a connection on {EndPoint} failed ({Error}); retrying shortly.")]
        public static partial void AcceptFailed(ILogger logger, string endPoint, SocketError error);
    }
}
