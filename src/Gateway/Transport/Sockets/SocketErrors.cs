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

    /// <summary>
    /// The runtime's meaning of an errno from the transport's own socket calls (<see cref="NonBlockingCalls"/>, the
    /// sends of a <see cref="SendBatch"/>); <see cref="SocketError.OperationAborted"/> for a descriptor already closed.
    /// </summary>
    public static SocketError FromErrno(int errno) => errno switch
    {
        Errno.Interrupted => SocketError.Interrupted,
        Errno.BadFile => SocketError.OperationAborted,
        Errno.TryAgain => SocketError.WouldBlock,
        Errno.OutOfMemory or Errno.NoBufferSpace => SocketError.NoBufferSpaceAvailable,
        Errno.BrokenPipe => SocketError.Shutdown,
        Errno.NetworkDown => SocketError.NetworkDown,
        Errno.NetworkUnreachable => SocketError.NetworkUnreachable,
        Errno.ConnectionAborted => SocketError.ConnectionAborted,
        Errno.ConnectionReset => SocketError.ConnectionReset,
        Errno.NotConnected => SocketError.NotConnected,
        Errno.TimedOut => SocketError.TimedOut,
        Errno.HostUnreachable => SocketError.HostUnreachable,
        _ => SocketError.SocketError,
    };
}

/// <summary>The errno values the transport's own system calls report (Linux's, the same on x64 and arm64).</summary>
internal static class Errno
{
    public const int Interrupted = 4;
    public const int BadFile = 9;
    public const int TryAgain = 11;
    public const int OutOfMemory = 12;
    public const int Busy = 16;
    public const int BrokenPipe = 32;
    public const int NetworkDown = 100;
    public const int NetworkUnreachable = 101;
    public const int ConnectionAborted = 103;
    public const int ConnectionReset = 104;
    public const int NoBufferSpace = 105;
    public const int NotConnected = 107;
    public const int TimedOut = 110;
    public const int HostUnreachable = 113;
}
