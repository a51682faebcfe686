using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;

namespace PushService.Gateway.Transport.Sockets;

/// <summary>What a socket error means to the layers above the transport, in the exception types Kestrel's own transport uses.</summary>
internal static class SocketErrors
{
    /// <summary>Null for <see cref="SocketError.Success"/> (the end of the stream).</summary>
    public static Exception? ToException(SocketError error) => error switch
    {
        SocketError.Success => null,
        // The socket was closed under the operation: this end aborted the connection.
        SocketError.OperationAborted or SocketError.Interrupted or SocketError.InvalidArgument =>
            new ConnectionAbortedException("The connection was aborted."),
        _ => new ConnectionResetException(new SocketException((int)error).Message, new SocketException((int)error)),
    };
}
