using System.Runtime.InteropServices;

namespace PushService.Gateway.Transport.Sockets;

/// <summary>
/// A minimal Linux io_uring of our own, for one purpose: handing the sends of a send loop's round to the kernel in one
/// system call (<see cref="SendBatch"/>). .NET has no io_uring API and the runtime's sockets do not use one, so this
/// speaks the kernel's ABI directly: <c>io_uring_setup</c>, its two shared mappings (the rings, which share one since
/// kernel 5.4, and the submission entries), and <c>io_uring_enter</c>.
/// </summary>
/// <remarks>
/// One submitter at a time (a send loop), not necessarily the same thread each time. Only what sending needs is here:
/// submission entries are written by <see cref="TryGetSubmissionEntry"/>, submitted and waited for together by
/// <see cref="SubmitAndWait"/>, and read back by <see cref="TryReadCompletion"/>.
/// </remarks>
internal sealed unsafe partial class IoUring : IDisposable
{
    public const byte OpSend = 26;

    private const long SysIoUringSetup = 425;
    private const long SysIoUringEnter = 426;
    private const uint EnterGetEvents = 1;
    private const uint FeatureSingleMmap = 1;
    private const long OffSqRing = 0;
    private const long OffSqes = 0x10000000;
    private const int ProtReadWrite = 0x1 | 0x2;
    private const int MapSharedPopulate = 0x01 | 0x8000;

    private readonly int _fd;
    private readonly byte* _rings;
    private readonly nuint _ringsSize;
    private readonly IoUringSqe* _sqes;
    private readonly nuint _sqesSize;
    private readonly uint* _sqHead;
    private readonly uint* _sqTail;
    private readonly uint _sqMask;
    private readonly uint* _cqHead;
    private readonly uint* _cqTail;
    private readonly uint _cqMask;
    private readonly IoUringCqe* _cqes;
    private uint _sqTailLocal;
    private bool _disposed;

    /// <summary>Over the rings' one mapping (<paramref name="rings"/>) and the submission entries' (<paramref name="sqes"/>).</summary>
    private IoUring(int fd, in IoUringParams p, byte* rings, nuint ringsSize, IoUringSqe* sqes, nuint sqesSize)
    {
        _fd = fd;
        _rings = rings;
        _ringsSize = ringsSize;
        _sqes = sqes;
        _sqesSize = sqesSize;
        _sqHead = (uint*)(rings + p.SqHead);
        _sqTail = (uint*)(rings + p.SqTail);
        _sqMask = *(uint*)(rings + p.SqRingMask);
        _cqHead = (uint*)(rings + p.CqHead);
        _cqTail = (uint*)(rings + p.CqTail);
        _cqMask = *(uint*)(rings + p.CqRingMask);
        _cqes = (IoUringCqe*)(rings + p.CqCqes);
        Entries = p.SqEntries;
        _sqTailLocal = *_sqTail;

        // The submission queue's index array maps slot i to entry i for good, so entries are used in ring order.
        var array = (uint*)(rings + p.SqArray);
        for (uint i = 0; i < p.SqEntries; i++)
        {
            array[i] = i;
        }
    }

    /// <summary>How many submission entries the ring holds.</summary>
    public uint Entries { get; }

    /// <summary>
    /// A ring of at least <paramref name="entries"/> entries, or null with the reason where the kernel has none to give
    /// (not Linux, a kernel before 5.6, io_uring turned off by <c>kernel.io_uring_disabled</c> or refused by a seccomp
    /// profile, as container runtimes' default profiles do).
    /// </summary>
    public static IoUring? TryCreate(uint entries, out string? unavailable)
    {
        unavailable = null;
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64))
        {
            unavailable = "io_uring is Linux's (x64 and arm64 here)";
            return null;
        }

        var p = default(IoUringParams);
        var fd = (int)Syscall(SysIoUringSetup, entries, (long)&p, 0, 0, 0, 0);
        if (fd < 0)
        {
            unavailable = $"io_uring_setup failed with errno {Marshal.GetLastPInvokeError()}";
            return null;
        }

        if ((p.Features & FeatureSingleMmap) == 0)
        {
            // Kernels before 5.4; IORING_OP_SEND came in 5.6 anyway.
            _ = Close(fd);
            unavailable = "the kernel's io_uring is older than 5.6";
            return null;
        }

        var sqRingSize = (nuint)(p.SqArray + (p.SqEntries * sizeof(uint)));
        var cqRingSize = (nuint)(p.CqCqes + (p.CqEntries * (uint)sizeof(IoUringCqe)));
        var ringSize = Math.Max(sqRingSize, cqRingSize);
        var ring = Mmap(null, ringSize, ProtReadWrite, MapSharedPopulate, fd, OffSqRing);
        if (ring == (void*)-1)
        {
            _ = Close(fd);
            unavailable = $"mapping the rings failed with errno {Marshal.GetLastPInvokeError()}";
            return null;
        }

        var sqesSize = (nuint)(p.SqEntries * (uint)sizeof(IoUringSqe));
        var sqes = Mmap(null, sqesSize, ProtReadWrite, MapSharedPopulate, fd, OffSqes);
        if (sqes == (void*)-1)
        {
            _ = Munmap(ring, ringSize);
            _ = Close(fd);
            unavailable = $"mapping the submission entries failed with errno {Marshal.GetLastPInvokeError()}";
            return null;
        }

        return new IoUring(fd, p, (byte*)ring, ringSize, (IoUringSqe*)sqes, sqesSize);
    }

    /// <summary>The next free submission entry, cleared; false when the ring is full (submit first).</summary>
    public bool TryGetSubmissionEntry(out IoUringSqe* entry)
    {
        var head = Volatile.Read(ref *_sqHead);
        if (_sqTailLocal - head >= Entries)
        {
            entry = null;
            return false;
        }

        entry = _sqes + (_sqTailLocal & _sqMask);
        *entry = default;
        _sqTailLocal++;
        return true;
    }

    /// <summary>
    /// Submits the entries written since the last call and waits until <paramref name="completions"/> have completed.
    /// Returns 0, or the errno of a failure the ring cannot recover from.
    /// </summary>
    public int SubmitAndWait(uint completions)
    {
        // Release: the entries' contents are visible to the kernel before the new tail is.
        Volatile.Write(ref *_sqTail, _sqTailLocal);
        while (true)
        {
            var toSubmit = _sqTailLocal - Volatile.Read(ref *_sqHead);
            var ready = Volatile.Read(ref *_cqTail) - *_cqHead;
            if (toSubmit == 0 && ready >= completions)
            {
                return 0;
            }

            var wait = ready >= completions ? 0 : completions - ready;
            var result = Syscall(SysIoUringEnter, _fd, toSubmit, wait, wait > 0 ? EnterGetEvents : 0, 0, 0);
            if (result < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno is not (Errno.Interrupted or Errno.TryAgain or Errno.Busy))
                {
                    return errno;
                }
            }
        }
    }

    /// <summary>Takes the next completion, if there is one.</summary>
    public bool TryReadCompletion(out ulong userData, out int result)
    {
        var head = *_cqHead;
        if (head == Volatile.Read(ref *_cqTail))
        {
            userData = 0;
            result = 0;
            return false;
        }

        var cqe = _cqes + (head & _cqMask);
        userData = cqe->UserData;
        result = cqe->Result;
        // Release: the entry is read before the kernel may reuse its slot.
        Volatile.Write(ref *_cqHead, head + 1);
        return true;
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _ = Munmap(_sqes, _sqesSize);
        _ = Munmap(_rings, _ringsSize);
        _ = Close(_fd);
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long arg1, long arg2, long arg3, long arg4, long arg5, long arg6);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial void* Mmap(void* address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int Munmap(void* address, nuint length);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}

/// <summary><c>struct io_uring_params</c>, with the offsets of <c>io_sqring_offsets</c> and <c>io_cqring_offsets</c> flattened.</summary>
[StructLayout(LayoutKind.Explicit, Size = 120)]
internal struct IoUringParams
{
    [FieldOffset(0)] public uint SqEntries;
    [FieldOffset(4)] public uint CqEntries;
    [FieldOffset(20)] public uint Features;
    [FieldOffset(40)] public uint SqHead;
    [FieldOffset(44)] public uint SqTail;
    [FieldOffset(48)] public uint SqRingMask;
    [FieldOffset(64)] public uint SqArray;
    [FieldOffset(80)] public uint CqHead;
    [FieldOffset(84)] public uint CqTail;
    [FieldOffset(88)] public uint CqRingMask;
    [FieldOffset(100)] public uint CqCqes;
}

/// <summary><c>struct io_uring_sqe</c>: the fields a send uses.</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
internal struct IoUringSqe
{
    [FieldOffset(0)] public byte Opcode;
    [FieldOffset(4)] public int Fd;
    [FieldOffset(16)] public ulong Address;
    [FieldOffset(24)] public uint Length;
    [FieldOffset(28)] public uint MessageFlags;
    [FieldOffset(32)] public ulong UserData;
}

/// <summary><c>struct io_uring_cqe</c>.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
internal struct IoUringCqe
{
    [FieldOffset(0)] public ulong UserData;
    [FieldOffset(8)] public int Result;
    [FieldOffset(12)] public uint Flags;
}
