using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using PushService.Gateway.Transport.Sockets;

namespace PushService.Gateway.Connections;

/// <summary>
/// A send loop's wake-up: set by the threads that schedule connections, waited on by the loop until its next window
/// ends. On Linux it is a futex the loop waits on with a deadline to the nanosecond; <see cref="ManualResetEventSlim"/>
/// takes its timeout in whole milliseconds, and rounding a window's end up to the next one held the flushes of a
/// 2.5 ms window half a millisecond late on average. Elsewhere it is that event, milliseconds and all. One thread
/// waits; any thread sets, before or after the loop has stopped, so nothing here is ever disposed.
/// </summary>
internal sealed unsafe partial class LoopSignal
{
    private const int FutexWaitPrivate = 0 | 128;
    private const int FutexWakePrivate = 1 | 128;

    private static readonly long FutexCall = !OperatingSystem.IsLinux() ? 0 : RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 202,
        Architecture.Arm64 => 98,
        _ => 0,
    };

    private readonly ManualResetEventSlim? _fallback;

    // The futex word: 1 set, 0 not. On the pinned heap, so that its address never moves under the kernel's wait, and
    // freed by the GC only when no thread can set it any more.
    private readonly int[]? _cell;
    private readonly int* _word;

    // 1 from just before the waiter checks the word until it stops waiting: only then does Set make a system call.
    private int _waiting;

    public LoopSignal()
    {
        if (FutexCall == 0)
        {
            // No spinning before the wait: on a small machine the core is what the thread that woke us needs.
            _fallback = new ManualResetEventSlim(false, spinCount: 0);
        }
        else
        {
            _cell = GC.AllocateArray<int>(1, pinned: true);
            _word = (int*)Unsafe.AsPointer(ref _cell[0]);
        }
    }

    /// <summary>Sets the signal, waking the waiter if it waits; setting a set signal is one read.</summary>
    public void Set()
    {
        if (_fallback is not null)
        {
            _fallback.Set();
            return;
        }

        if (Volatile.Read(ref *_word) != 0 || Interlocked.Exchange(ref *_word, 1) != 0)
        {
            return;
        }

        // The exchange above is a full fence, paired with the one in Wait: either the waiter sees the word set before it
        // sleeps, or this sees it waiting. A wake-up for a waiter that did not sleep after all costs a call, nothing else.
        if (Volatile.Read(ref _waiting) != 0)
        {
            Futex(FutexCall, _word, FutexWakePrivate, 1, null, null, 0);
        }
    }

    /// <summary>Clears the signal; called by the waiter only.</summary>
    public void Reset()
    {
        if (_fallback is not null)
        {
            _fallback.Reset();
        }
        else
        {
            Volatile.Write(ref *_word, 0);
        }
    }

    /// <summary>Waits until the signal is set or <paramref name="timeout"/> has passed (<see cref="Timeout.InfiniteTimeSpan"/>: no limit).</summary>
    public void Wait(TimeSpan timeout)
    {
        var unlimited = timeout == Timeout.InfiniteTimeSpan;
        if (_fallback is not null)
        {
            // Whole milliseconds, rounded up: waking before the deadline would only wait again.
            _fallback.Wait(unlimited ? Timeout.Infinite : (int)Math.Clamp(Math.Ceiling(timeout.TotalMilliseconds), 1, int.MaxValue));
            return;
        }

        var deadline = unlimited ? long.MaxValue : Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        Interlocked.Exchange(ref _waiting, 1);
        try
        {
            while (Volatile.Read(ref *_word) == 0)
            {
                if (unlimited)
                {
                    Futex(FutexCall, _word, FutexWaitPrivate, 0, null, null, 0);
                    continue;
                }

                var left = deadline - Stopwatch.GetTimestamp();
                if (left <= 0)
                {
                    return;
                }

                var nanoseconds = (long)(left * (1_000_000_000.0 / Stopwatch.Frequency));
                var sleep = new TimeSpec { Seconds = nanoseconds / 1_000_000_000, Nanoseconds = nanoseconds % 1_000_000_000 };

                // The kernel sleeps only while the word is still 0: a Set after the check above ends the call at once.
                if (Futex(FutexCall, _word, FutexWaitPrivate, 0, &sleep, null, 0) != 0 && Marshal.GetLastSystemError() == Errno.TimedOut)
                {
                    return;
                }
            }
        }
        finally
        {
            Volatile.Write(ref _waiting, 0);
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Futex(long number, int* word, int operation, int value, TimeSpec* timeout, int* word2, int value3);
}
