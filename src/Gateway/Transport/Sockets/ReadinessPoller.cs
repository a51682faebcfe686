using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace PushService.Gateway.Transport.Sockets;

/// <summary>Told by a <see cref="ReadinessPoller"/> that the socket it waits on can be read, or has ended.</summary>
/// <remarks><see cref="IThreadPoolWorkItem.Execute"/> is that notice, so that handing it to the thread pool allocates nothing.</remarks>
internal interface IReadinessTarget : IThreadPoolWorkItem;

/// <summary>
/// Tells connections' inputs when their sockets become readable, through epoll instances of the transport's own, each
/// with a thread that waits on it. A wait posted through the runtime instead (a zero-byte <c>Socket.ReceiveAsync</c>)
/// leaves its machinery on the socket for good: an event-args object, a receive operation and its callback, about 490
/// bytes of an idle WebSocket's 3,100 (docs/benchmarks-history.md). Here a wait is a slot in a table and the kernel's
/// own registration.
/// </summary>
/// <remarks>
/// <para>
/// Registrations are one-shot (<c>EPOLLONESHOT</c>) and level-triggered: each wait arms its socket again, and a socket
/// that already has bytes when it is armed is reported at once, so no wake-up can fall between a read that found nothing
/// and the wait after it. An event carries its slot and the slot's generation. A slot is freed when its socket closes
/// (<see cref="Release"/>) and its generation moves on, so an event still on its way for the old socket is dropped
/// rather than delivered to the slot's next owner. The kernel drops a socket from every epoll set once its last
/// descriptor closes, so a closed socket needs nothing more.
/// </para>
/// <para>
/// Notices run on the waiting thread when the runtime's socket completions do
/// (<c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c>, as the gateway is deployed), with one epoll instance and
/// thread per processor as the runtime then has; otherwise one thread hands them to the thread pool. Linux only:
/// elsewhere <see cref="Shared"/> is null and inputs wait through the runtime.
/// </para>
/// </remarks>
internal sealed unsafe partial class ReadinessPoller
{
    private const uint EpollIn = 0x001;
    private const uint EpollRdHup = 0x2000;
    private const uint EpollOneShot = 1u << 30;
    private const int CtlAdd = 1;
    private const int CtlMod = 3;
    private const int CloExec = 0x80000;
    private const int MaxEvents = 256;

    private static readonly Lazy<ReadinessPoller?> s_shared = new(() => TryCreate(
        Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") == "1", out _));

    // x64's struct epoll_event is packed (12 bytes, its data at offset 4); arm64's is not (16, at 8).
    private static readonly int s_eventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    private static readonly int s_dataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    private readonly int[] _epolls;
    private readonly bool _inline;
    private readonly Lock _slotsLock = new();
    private Slot[] _slots = new Slot[256];
    private int _slotsUsed;
    private readonly Stack<int> _freeSlots = new();

    private ReadinessPoller(int[] epolls, bool inline)
    {
        _epolls = epolls;
        _inline = inline;
        for (var i = 0; i < epolls.Length; i++)
        {
            var epoll = epolls[i];
            new Thread(() => Run(epoll))
            {
                IsBackground = true,
                Name = epolls.Length == 1 ? ".NET PushService Readiness" : $".NET PushService Readiness {i}",
            }.Start();
        }
    }

    /// <summary>The process's poller, or null where there is none (not Linux on x64 or arm64, or epoll refused).</summary>
    public static ReadinessPoller? Shared => s_shared.Value;

    /// <summary>How many sockets hold a slot now; for tests.</summary>
    internal int Registered
    {
        get
        {
            lock (_slotsLock)
            {
                return _slotsUsed - _freeSlots.Count;
            }
        }
    }

    /// <summary>
    /// A poller of its own (the process's is <see cref="Shared"/>): notices on its threads when <paramref name="inline"/>,
    /// else on the thread pool. Null, with the reason, where epoll is not available. Its threads live as long as the process.
    /// </summary>
    public static ReadinessPoller? TryCreate(bool inline, out string? unavailable)
    {
        unavailable = null;
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64))
        {
            unavailable = "epoll is Linux's (x64 and arm64 here)";
            return null;
        }

        var epolls = new int[inline ? Environment.ProcessorCount : 1];
        for (var i = 0; i < epolls.Length; i++)
        {
            epolls[i] = EpollCreate1(CloExec);
            if (epolls[i] < 0)
            {
                unavailable = $"epoll_create1 failed with errno {Marshal.GetLastPInvokeError()}";
                for (var j = 0; j < i; j++)
                {
                    _ = Close(epolls[j]);
                }

                return null;
            }
        }

        return new ReadinessPoller(epolls, inline);
    }

    /// <summary>
    /// Arms <paramref name="socket"/> for one notice to <paramref name="target"/> when it becomes readable (at once
    /// if it is). <paramref name="registration"/> is the caller's: 0 before the first wait, then the socket's slot,
    /// until <see cref="Release"/>. Returns 0, or the errno of a failure (<see cref="Errno.BadFile"/>: the socket is closed).
    /// A socket's waits are armed one at a time (its input's lock).
    /// </summary>
    public int Arm(SafeSocketHandle socket, IReadinessTarget target, ref ulong registration)
    {
        var added = false;
        try
        {
            // The descriptor stays this socket's for the call: a socket closed meanwhile cannot hand its number on.
            socket.DangerousAddRef(ref added);
        }
        catch (ObjectDisposedException)
        {
            return Errno.BadFile;
        }

        try
        {
            var operation = CtlMod;
            if (registration == 0)
            {
                registration = Allocate(target);
                operation = CtlAdd;
            }

            var slot = (int)(uint)registration;
            var ev = stackalloc byte[16];
            Unsafe.WriteUnaligned(ev, EpollIn | EpollRdHup | EpollOneShot);
            Unsafe.WriteUnaligned(ev + s_dataOffset, registration);
            if (EpollCtl(_epolls[slot % _epolls.Length], operation, (int)socket.DangerousGetHandle(), ev) == 0)
            {
                return 0;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (operation == CtlAdd)
            {
                Release(ref registration);
            }

            return errno;
        }
        finally
        {
            if (added)
            {
                socket.DangerousRelease();
            }
        }
    }

    /// <summary>Frees a closed socket's slot (nothing when it has none): a notice still on its way is dropped.</summary>
    public void Release(ref ulong registration)
    {
        if (registration == 0)
        {
            return;
        }

        lock (_slotsLock)
        {
            ref var slot = ref _slots[(int)(uint)registration];
            slot.Target = null;
            slot.Generation = slot.Generation == uint.MaxValue ? 1 : slot.Generation + 1;
            _freeSlots.Push((int)(uint)registration);
        }

        registration = 0;
    }

    private ulong Allocate(IReadinessTarget target)
    {
        lock (_slotsLock)
        {
            if (!_freeSlots.TryPop(out var index))
            {
                if (_slotsUsed == _slots.Length)
                {
                    Array.Resize(ref _slots, _slots.Length * 2);
                }

                index = _slotsUsed++;
                _slots[index].Generation = 1;
            }

            _slots[index].Target = target;
            return ((ulong)_slots[index].Generation << 32) | (uint)index;
        }
    }

    private void Run(int epoll)
    {
        var events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * s_eventSize));
        var targets = new IReadinessTarget?[MaxEvents];
        while (true)
        {
            var count = EpollWait(epoll, events, MaxEvents, -1);
            if (count < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.Interrupted)
                {
                    continue;
                }

                // Only a bad epoll descriptor or buffer fails a wait, and neither can happen here.
                throw new InvalidOperationException($"epoll_wait failed with errno {errno}.");
            }

            lock (_slotsLock)
            {
                for (var i = 0; i < count; i++)
                {
                    var registration = Unsafe.ReadUnaligned<ulong>(events + (i * s_eventSize) + s_dataOffset);
                    ref var slot = ref _slots[(int)(uint)registration];
                    targets[i] = slot.Generation == (uint)(registration >> 32) ? slot.Target : null;
                }
            }

            for (var i = 0; i < count; i++)
            {
                if (targets[i] is { } target)
                {
                    targets[i] = null;
                    if (_inline)
                    {
                        // As the runtime's inline completions do: the input's notice never throws, and what it runs
                        // (a reader's continuation) reports its own failures through its task.
                        target.Execute();
                    }
                    else
                    {
                        ThreadPool.UnsafeQueueUserWorkItem(target, preferLocal: false);
                    }
                }
            }
        }
    }

    private struct Slot
    {
        public IReadinessTarget? Target;

        /// <summary>Never 0, so that a registration is never 0.</summary>
        public uint Generation;
    }

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    private static partial int EpollCreate1(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    private static partial int EpollCtl(int epoll, int operation, int fd, void* ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    private static partial int EpollWait(int epoll, void* events, int maxEvents, int timeout);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
