using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace PushService.Gateway.Transport.Sockets;

/// <summary>
/// The lean transport's reads and writes that must not wait: on Linux, <c>recvmsg</c> and <c>sendmsg</c> with
/// <c>MSG_DONTWAIT</c>, which leave the socket in the runtime's blocking mode. Switching a socket to non-blocking
/// through <see cref="Socket.Blocking"/> makes the runtime give it an async context for good (about 220 bytes with its
/// locks, on every idle connection) that nothing here uses; a socket the runtime is asked to wait on
/// (<see cref="Socket.SendAsync(ReadOnlyMemory{byte}, SocketFlags, CancellationToken)"/> under backpressure) still gets
/// one then. Elsewhere the socket's own calls, with the socket made non-blocking when accepted (<see cref="Native"/>).
/// </summary>
internal static unsafe partial class NonBlockingCalls
{
    private const int MsgDontWait = 0x40;
    private const int MsgNoSignal = 0x4000;
    private const int MaxGather = 64;

    /// <summary>Whether these calls are the kernel's own; when false the socket must be non-blocking (<see cref="Socket.Blocking"/>).</summary>
    public static bool Native { get; } = OperatingSystem.IsLinux();

    /// <summary>Reads what the socket has now into <paramref name="buffer"/>: 0 with <see cref="SocketError.Success"/> at the end of the input.</summary>
    public static int Receive(Socket socket, Span<byte> buffer, out SocketError error)
    {
        if (!Native)
        {
            return socket.Receive(buffer, SocketFlags.None, out error);
        }

        fixed (byte* bytes = buffer)
        {
            var vector = new IoVector { Base = bytes, Length = (nuint)buffer.Length };
            return Transfer(socket, &vector, 1, receive: true, out error);
        }
    }

    /// <summary>Sends what the kernel takes now of <paramref name="buffer"/>; <see cref="SocketError.WouldBlock"/> when it takes nothing.</summary>
    public static int Send(Socket socket, ReadOnlySpan<byte> buffer, out SocketError error)
    {
        if (!Native)
        {
            return socket.Send(buffer, SocketFlags.None, out error);
        }

        fixed (byte* bytes = buffer)
        {
            var vector = new IoVector { Base = bytes, Length = (nuint)buffer.Length };
            return Transfer(socket, &vector, 1, receive: false, out error);
        }
    }

    /// <summary>Sends what the kernel takes now of <paramref name="buffers"/> (at most 64), in one call.</summary>
    public static int Send(Socket socket, List<ArraySegment<byte>> buffers, out SocketError error)
    {
        if (!Native)
        {
            return socket.Send(buffers, SocketFlags.None, out error);
        }

        var count = Math.Min(buffers.Count, MaxGather);
        var vectors = stackalloc IoVector[count];
        Span<GCHandle> pins = stackalloc GCHandle[count];
        try
        {
            for (var i = 0; i < count; i++)
            {
                var segment = buffers[i];
                pins[i] = GCHandle.Alloc(segment.Array, GCHandleType.Pinned);
                vectors[i] = new IoVector
                {
                    Base = (byte*)pins[i].AddrOfPinnedObject() + segment.Offset,
                    Length = (nuint)segment.Count,
                };
            }

            return Transfer(socket, vectors, count, receive: false, out error);
        }
        finally
        {
            foreach (var pin in pins)
            {
                if (pin.IsAllocated)
                {
                    pin.Free();
                }
            }
        }
    }

    /// <summary>One <c>recvmsg</c> or <c>sendmsg</c> that does not wait, taken again when a signal interrupts it.</summary>
    private static int Transfer(Socket socket, IoVector* vectors, int count, bool receive, out SocketError error)
    {
        using var handle = new HandleReference(socket);
        if (!handle.Held)
        {
            error = SocketError.OperationAborted;
            return 0;
        }

        var message = new MessageHeader { Vectors = vectors, VectorCount = (nuint)count };
        while (true)
        {
            var done = receive ? RecvMsg(handle.Fd, &message, MsgDontWait) : SendMsg(handle.Fd, &message, MsgDontWait | MsgNoSignal);
            if (done >= 0)
            {
                error = SocketError.Success;
                return (int)done;
            }

            if (SocketErrors.FromErrno(Marshal.GetLastPInvokeError()) is var failure and not SocketError.Interrupted)
            {
                error = failure;
                return 0;
            }
        }
    }

    /// <summary>
    /// The socket's descriptor, held for one call: a socket closed meanwhile keeps its number until the call is done,
    /// so the call cannot reach another socket that took the number.
    /// </summary>
    private readonly ref struct HandleReference
    {
        private readonly SafeSocketHandle? _handle;

        public HandleReference(Socket socket)
        {
            var handle = socket.SafeHandle;
            var added = false;
            try
            {
                handle.DangerousAddRef(ref added);
            }
            catch (ObjectDisposedException)
            {
            }

            if (added)
            {
                _handle = handle;
                Fd = (int)handle.DangerousGetHandle();
            }
        }

        public bool Held => _handle is not null;

        public int Fd { get; }

        public void Dispose() => _handle?.DangerousRelease();
    }

    private struct IoVector
    {
        public byte* Base;
        public nuint Length;
    }

    /// <summary>struct msghdr, without an address or control data.</summary>
    private struct MessageHeader
    {
        public void* Name;
        public uint NameLength;
        public IoVector* Vectors;
        public nuint VectorCount;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [LibraryImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
    private static partial nint RecvMsg(int fd, MessageHeader* message, int flags);

    [LibraryImport("libc", EntryPoint = "sendmsg", SetLastError = true)]
    private static partial nint SendMsg(int fd, MessageHeader* message, int flags);
}
