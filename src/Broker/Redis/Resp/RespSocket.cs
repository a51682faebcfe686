using System.Net;
using System.Net.Sockets;

namespace PushService.Broker.Redis.Resp;

/// <summary>How the broker's own connections reach Redis: the socket, the commands that open a session, and trying again.</summary>
internal static class RespSocket
{
    private static readonly TimeSpan[] RetryDelays = [TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2)];

    /// <summary>
    /// Connects to <paramref name="server"/> with TCP keep-alive, which notices a server that went away without
    /// closing, and Nagle off, so a command leaves at once. Null when Redis cannot be reached (<paramref name="failed"/>
    /// is told why, unless the caller is stopping).
    /// </summary>
    public static async Task<Socket?> TryConnectAsync(RespServer server, TimeSpan timeout, Action<string> failed, CancellationToken stopping)
    {
        try
        {
            return await ConnectAsync(server.EndPoint, timeout, stopping);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            if (!stopping.IsCancellationRequested)
            {
                failed(ex.Message);
            }

            return null;
        }
    }

    /// <summary>Runs <paramref name="attempt"/> after a growing delay (250 ms up to 2 s), or as soon as another connection
    /// reached <paramref name="server"/>, until it succeeds, <paramref name="giveUp"/> says to stop, or
    /// <paramref name="stopping"/> is cancelled; true when an attempt succeeded.</summary>
    public static async Task<bool> RetryAsync(RespServer server, Func<Task<bool>> attempt, Func<bool> giveUp, CancellationToken stopping)
    {
        // Taken before each attempt, so that a connection that got through while this one was failing counts too.
        var reached = server.Reached;
        for (var i = 0; !stopping.IsCancellationRequested && !giveUp(); i++)
        {
            await Task.WhenAny(Task.Delay(RetryDelays[Math.Min(i, RetryDelays.Length - 1)], stopping), reached);
            if (stopping.IsCancellationRequested)
            {
                return false;
            }

            reached = server.Reached;
            if (await attempt())
            {
                return true;
            }
        }

        return false;
    }

    private static async Task<Socket> ConnectAsync(EndPoint endpoint, TimeSpan timeout, CancellationToken cancellationToken)
    {
        // A host name may resolve to IPv4 or IPv6: a dual-mode socket takes either.
        var socket = endpoint.AddressFamily == AddressFamily.Unspecified
            ? new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true }
            : new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, 10);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 5);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 3);
            using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            connectTimeout.CancelAfter(timeout);
            await socket.ConnectAsync(endpoint, connectTimeout.Token);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>The commands that open a session on <paramref name="server"/>, each answered <c>+OK</c>: <c>AUTH</c> when
    /// there is a password, <c>SELECT</c> when <paramref name="selectDatabase"/> and a database other than 0 is named, and
    /// <c>CLIENT SETNAME</c>.</summary>
    public static IEnumerable<(string What, byte[] Bytes)> Hello(RespServer server, bool selectDatabase)
    {
        if (server.Password is { } password)
        {
            yield return ("AUTH", server.User is { } user ? RespWriter.Command("AUTH", user, password) : RespWriter.Command("AUTH", password));
        }

        if (selectDatabase && server.Database is > 0 and var index)
        {
            yield return ("SELECT", RespWriter.Command("SELECT", index.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        yield return ("CLIENT SETNAME", RespWriter.Command("CLIENT", "SETNAME", server.ClientName));
    }
}
