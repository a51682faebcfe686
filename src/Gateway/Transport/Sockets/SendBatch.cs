using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace PushService.Gateway.Transport.Sockets;

/// <summary>Told when a flush handed to a <see cref="SendBatch"/> has ended.</summary>
internal interface IBatchedFlushCompletion
{
    /// <summary>The flush ended as a <see cref="PipeWriter.FlushAsync"/> would have (completed: nothing more can be sent).</summary>
    void OnFlushed(FlushResult result);
}

/// <summary>
/// The sends of one send loop's round, handed to the kernel together: each connection's flush moves its buffered bytes
/// into the batch (<see cref="TryAdd"/>), and <see cref="Submit"/> sends them all with one io_uring system call, then
/// ends each flush as its own send came out. On this kind of machine a system call's entry and exit cost about as much
/// as a small loopback send's own work (docs/benchmarks-history.md, "What changed: one system call per round"), and a round of
/// a fan-out is a send to each of hundreds of sockets.
/// </summary>
/// <remarks>
/// The bytes are copied into the batch's own native memory, which the kernel reads without pinning anything, and the
/// connection's buffers go back at once rather than being held for the round (a round holds hundreds; a thread caches
/// a few). Sends are non-blocking (<c>MSG_DONTWAIT</c>): the kernel completes each within the call, and what it does
/// not take (a full send buffer) goes on as an ordinary flush of that connection. A batched flush thus behaves like
/// the flush it replaces, only later by the length of the round. Owned by one send loop; not thread-safe.
/// </remarks>
internal sealed unsafe class SendBatch : IDisposable
{
    /// <summary>The bytes one round holds before it is submitted; a flush of more than a quarter of it is not batched.</summary>
    private const int ArenaBytes = 256 * 1024;

    private const uint MsgDontWait = 0x40;
    private const uint MsgNoSignal = 0x4000;

    private readonly IoUring _ring;
    private readonly Entry[] _entries;
    private readonly byte* _arena;
    private int _count;
    private int _used;

    private SendBatch(IoUring ring)
    {
        _ring = ring;
        _entries = new Entry[(int)ring.Entries];
        _arena = (byte*)NativeMemory.Alloc(ArenaBytes);
    }

    /// <summary>A batch of up to <paramref name="capacity"/> sends per system call, or null with the reason where io_uring is not available.</summary>
    public static SendBatch? TryCreate(uint capacity, out string? unavailable)
    {
        var ring = IoUring.TryCreate(capacity, out unavailable);
        return ring is null ? null : new SendBatch(ring);
    }

    /// <summary>How many flushes wait for <see cref="Submit"/>.</summary>
    public int Count => _count;

    /// <summary>The errno with which the ring itself failed, after which every flush takes the ordinary way; 0 while it works.</summary>
    public int FailedWith { get; private set; }

    private Span<byte> Free => new(_arena + _used, ArenaBytes - _used);

    /// <summary>
    /// Takes <paramref name="output"/>'s flush into the batch: true when it will be sent by <see cref="Submit"/> and
    /// <paramref name="completion"/> told then; false when the caller flushes it as usual (not a socket of the lean
    /// transport, nothing to send or a lot, a flush canceled or failed before).
    /// </summary>
    public bool TryAdd(PipeWriter output, IBatchedFlushCompletion completion)
    {
        if (FailedWith != 0 || output is not SocketOutput socketOutput)
        {
            return false;
        }

        var bytes = socketOutput.BufferedBytes;
        if (bytes > ArenaBytes / 4)
        {
            // A send of its own costs little more than its share of a batch would.
            return false;
        }

        if (_count == _entries.Length || bytes > ArenaBytes - _used)
        {
            Submit();
        }

        if (!socketOutput.TryMoveToBatch(Free, out var length))
        {
            return false;
        }

        _entries[_count] = new Entry(socketOutput, completion, _used, length);
        _count++;
        _used += length;
        return true;
    }

    /// <summary>Sends everything added since the last call, in one system call, and ends each flush.</summary>
    public void Submit()
    {
        var count = _count;
        if (count == 0)
        {
            return;
        }

        var submitted = 0;
        for (var i = 0; i < count; i++)
        {
            if (Prepare(i))
            {
                submitted++;
            }
        }

        if (submitted > 0 && _ring.SubmitAndWait((uint)submitted) is var error and not 0)
        {
            // The ring itself failed (not one send): everything after this round is sent the ordinary way.
            FailedWith = error;
        }

        while (_ring.TryReadCompletion(out var slot, out var result))
        {
            Complete((int)slot, result);
        }

        for (var i = 0; i < count; i++)
        {
            if (_entries[i].Output is not null)
            {
                // Not submitted: its socket was closed (EBADF), or the ring had no room (EAGAIN: sent the ordinary
                // way). Or submitted and not completed by a broken ring: whether its bytes went out is unknown, so the
                // connection cannot go on (its client recovers what it missed from history).
                Complete(i, _entries[i].Unsubmitted != 0 ? -_entries[i].Unsubmitted : -Errno.ConnectionAborted);
            }
        }

        _count = 0;
        _used = 0;
    }

    /// <summary>Writes slot <paramref name="slot"/>'s send into the ring; false, with the reason, when it cannot go.</summary>
    private bool Prepare(int slot)
    {
        ref var entry = ref _entries[slot];
        var added = false;
        SafeSocketHandle? handle = null;
        try
        {
            // A reference held until the send completes: a socket closed meanwhile keeps its descriptor until then,
            // so the send cannot reach another socket that reused the number.
            handle = entry.Output!.Socket.SafeHandle;
            handle.DangerousAddRef(ref added);
        }
        catch (ObjectDisposedException)
        {
        }

        if (!added)
        {
            entry.Unsubmitted = Errno.BadFile;
            return false;
        }

        if (!_ring.TryGetSubmissionEntry(out var sqe))
        {
            handle!.DangerousRelease();
            entry.Unsubmitted = Errno.TryAgain;
            return false;
        }

        entry.Handle = handle;
        sqe->Opcode = IoUring.OpSend;
        sqe->Fd = (int)handle!.DangerousGetHandle();
        sqe->Address = (ulong)(_arena + entry.Offset);
        sqe->Length = (uint)entry.Length;
        sqe->MessageFlags = MsgDontWait | MsgNoSignal;
        sqe->UserData = (ulong)slot;
        return true;
    }

    private void Complete(int slot, int result)
    {
        ref var entry = ref _entries[slot];
        var output = entry.Output!;
        var completion = entry.Completion!;
        entry.Handle?.DangerousRelease();
        var sent = Math.Max(result, 0);
        var unsent = new ReadOnlySpan<byte>(_arena + entry.Offset + sent, entry.Length - sent);
        entry = default;
        output.CompleteBatchedFlush(result, unsent, completion);
    }

    public void Dispose()
    {
        _ring.Dispose();
        NativeMemory.Free(_arena);
    }

    private struct Entry(SocketOutput output, IBatchedFlushCompletion completion, int offset, int length)
    {
        public SocketOutput? Output = output;
        public IBatchedFlushCompletion? Completion = completion;
        public int Offset = offset;
        public int Length = length;
        public SafeSocketHandle? Handle;

        /// <summary>Why the send was not submitted (an errno), or 0.</summary>
        public int Unsubmitted;
    }
}
