using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Tasks.Sources;

namespace PushService.Gateway.Transport.Sockets;

/// <summary>
/// A connection's input on the lean transport: bytes are read from the socket when the reader asks for them, into a
/// buffer rented then and given back once they are consumed. Between reads the kernel's socket buffer is the only
/// buffer, so an idle connection holds one wait for the socket to become readable and no memory. Kestrel's socket
/// transport instead runs a receive loop into an input <see cref="Pipe"/> per connection.
/// </summary>
/// <remarks>
/// The wait is a slot in the <see cref="ReadinessPoller"/> (where there is none, a zero-byte receive, whose machinery
/// the runtime then keeps on the socket), and the read after it one that does not block (<see cref="NonBlockingCalls"/>):
/// a wait that ends with nothing to read (a stale readiness edge) costs nothing and is simply posted again,
/// where a receive loop would have rented a buffer and left a receive pending into it. Every buffer is touched only
/// under the lock and never by a pending socket operation, so giving one back cannot race the kernel. When no one is
/// reading, a finished wait checks only whether the input ended (so <c>ConnectionClosed</c> fires); unread data stays in
/// the kernel, where TCP's window pushes back on the sender.
/// </remarks>
internal sealed class SocketInput : PipeReader, IValueTaskSource<ReadResult>, IReadinessTarget
{
    /// <summary>Below this much room in the last buffer a read rents a fresh one rather than read a few bytes.</summary>
    private const int MinimumReceive = 512;

    private readonly LeanSocketConnection _connection;
    private readonly Lock _lock = new();
    private readonly ReadinessPoller? _poller;
    private Action? _onWaitCompleted;

    /// <summary>The socket's slot in <see cref="_poller"/> (0 before its first wait and once it is closed).</summary>
    private ulong _registration;
    private ManualResetValueTaskSourceCore<ReadResult> _read;
    private CancellationTokenRegistration _readCancellation;
    private CancellationToken _readToken;
    private ValueTask<int> _wait;

    private PooledSegment? _head;
    private int _headStart;
    private PooledSegment? _tail;

    /// <summary>Buffered bytes the reader has not examined yet: the next read returns at once.</summary>
    private bool _unexamined;
    private bool _waiting;
    private bool _readPending;
    private bool _cancelRequested;
    private bool _completed;

    /// <summary>The socket's input ended: at the end of the stream, or with <see cref="_error"/>.</summary>
    private bool _ended;
    private Exception? _error;

    private Socket Socket => _connection.Socket;

    /// <summary>Over <paramref name="connection"/>'s socket; waits through <paramref name="poller"/>, or through the runtime when it is null.</summary>
    public SocketInput(LeanSocketConnection connection, ReadinessPoller? poller)
    {
        _connection = connection;
        _poller = poller;
    }

    /// <summary>Whether the input holds a buffer now (read bytes not yet consumed); for tests of the idle state.</summary>
    internal bool HoldsBuffers
    {
        get
        {
            lock (_lock)
            {
                return _head is not null;
            }
        }
    }

    private ReadOnlySequence<byte> Buffered => _head is null
        ? ReadOnlySequence<byte>.Empty
        : new ReadOnlySequence<byte>(_head, _headStart, _tail!, _tail!.End);

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<ReadResult>(cancellationToken);
        }

        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_completed, this);
            if (_readPending)
            {
                throw new InvalidOperationException("A read is already pending.");
            }

            if (TryComplete(out var result))
            {
                return new ValueTask<ReadResult>(result);
            }

            _readPending = true;
            _read.Reset();
            if (cancellationToken.CanBeCanceled)
            {
                _readToken = cancellationToken;
                _readCancellation = cancellationToken.UnsafeRegister(static (state, token) => ((SocketInput)state!).CancelRead(token), this);
            }

            return new ValueTask<ReadResult>(this, _read.Version);
        }
    }

    public override bool TryRead(out ReadResult result)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_completed, this);
            if (!_unexamined && !_cancelRequested && !_ended && !_waiting)
            {
                TryReceive();
            }

            if (_cancelRequested || _unexamined || _ended)
            {
                return TryComplete(out result);
            }

            result = default;
            return false;
        }
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_completed, this);
            if (consumed.GetObject() is PooledSegment consumedSegment)
            {
                while (_head is not null && _head != consumedSegment)
                {
                    var next = _head.NextSegment;
                    PooledSegment.Release(_head);
                    _head = next;
                }

                _headStart = consumed.GetInteger();
                PooledSegment.ReleaseConsumed(ref _head, ref _headStart, ref _tail);
            }

            _unexamined = _head is not null && !(examined.GetObject() == _tail && examined.GetInteger() == _tail!.End);

            // Everything seen: keep a wait posted, so that the end of the input is noticed (and ConnectionClosed fires)
            // even while the reader is busy with what it read; it holds no buffer.
            if (!_unexamined && !_waiting && !_ended && !_readPending)
            {
                StartWait();
            }
        }
    }

    public override void CancelPendingRead()
    {
        ReadResult result;
        lock (_lock)
        {
            if (!_readPending)
            {
                _cancelRequested = true;
                return;
            }

            EndPendingRead();
            result = new ReadResult(Buffered, isCanceled: true, isCompleted: false);
        }

        _read.SetResult(result);
    }

    public override void Complete(Exception? exception = null)
    {
        lock (_lock)
        {
            _completed = true;
            PooledSegment.ReleaseAll(_head);
            _head = _tail = null;
            _unexamined = false;
        }
    }

    /// <summary>
    /// Under the lock: the result for a read, when there is one now. Reads what the socket has without waiting;
    /// otherwise posts a wait (when none is posted) and returns false.
    /// </summary>
    private bool TryComplete(out ReadResult result)
    {
        while (true)
        {
            if (_cancelRequested)
            {
                _cancelRequested = false;
                result = new ReadResult(Buffered, isCanceled: true, isCompleted: false);
                return true;
            }

            if (_unexamined)
            {
                result = new ReadResult(Buffered, isCanceled: false, isCompleted: false);
                return true;
            }

            if (_ended)
            {
                if (_error is not null)
                {
                    throw _error;
                }

                result = new ReadResult(Buffered, isCanceled: false, isCompleted: true);
                return true;
            }

            if (_waiting || (!TryReceive() && StartWait()))
            {
                result = default;
                return false;
            }
        }
    }

    /// <summary>Under the lock: reads what the socket has now. False when it has nothing (the read would block).</summary>
    private bool TryReceive()
    {
        var fresh = _tail is null || _tail.Free < MinimumReceive;
        var target = !fresh ? _tail! : _tail is null ? PooledSegment.Rent(PooledSegment.StandardSize, 0) : _tail.Append(PooledSegment.StandardSize);
        var received = NonBlockingCalls.Receive(Socket, target.Array.AsSpan(target.End, target.Free), out var error);

        if (error == SocketError.Success && received > 0)
        {
            target.Grow(received);
            if (_tail is null)
            {
                _head = target;
                _headStart = 0;
            }

            _tail = target;
            _unexamined = true;
            return true;
        }

        if (fresh)
        {
            _tail?.Unlink();
            PooledSegment.Release(target);
        }

        if (error == SocketError.WouldBlock)
        {
            return false;
        }

        End(error);
        return true;
    }

    /// <summary>
    /// Under the lock: waits for the socket to have something to read (or to end), through the poller, or else with a
    /// zero-byte receive. False when it ended at once: the caller reads again.
    /// </summary>
    private bool StartWait()
    {
        if (_poller is not null)
        {
            var errno = _poller.Arm(Socket.SafeHandle, this, ref _registration);
            if (errno != 0)
            {
                End(SocketErrors.FromErrno(errno));
                return false;
            }

            _waiting = true;
            return true;
        }

        ValueTask<int> wait;
        try
        {
            wait = Socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None);
        }
        catch (ObjectDisposedException)
        {
            End(SocketError.OperationAborted);
            return false;
        }

        if (wait.IsCompleted)
        {
            Observe(wait);
            return false;
        }

        _waiting = true;
        _wait = wait;
        wait.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onWaitCompleted ??= OnWaitCompleted);
        return true;
    }

    private void Observe(ValueTask<int> wait)
    {
        try
        {
            wait.GetAwaiter().GetResult();
        }
        catch (SocketException ex)
        {
            End(ex.SocketErrorCode);
        }
        catch (ObjectDisposedException)
        {
            End(SocketError.OperationAborted);
        }
    }

    /// <summary>The poller's notice: the socket can be read, or has ended.</summary>
    void IThreadPoolWorkItem.Execute() => OnWaitCompleted();

    /// <summary>
    /// The socket was closed (<see cref="LeanSocketConnection"/>'s shutdown): its slot in the poller is given back, and
    /// a wait there, which no notice will end now, ends as the runtime ends a receive on a closed socket.
    /// </summary>
    public void OnSocketClosed()
    {
        if (_poller is null)
        {
            return;
        }

        lock (_lock)
        {
            _poller.Release(ref _registration);
            if (!_waiting)
            {
                return;
            }
        }

        OnWaitCompleted(socketClosed: true);
    }

    /// <summary>
    /// Runs when a wait ends: on the poller's or the socket event thread with inline completions, else on a thread-pool
    /// thread; never throws (that would take the process down).
    /// </summary>
    private void OnWaitCompleted() => OnWaitCompleted(socketClosed: false);

    private void OnWaitCompleted(bool socketClosed)
    {
        ReadResult result = default;
        Exception? failure = null;
        lock (_lock)
        {
            if (!_waiting)
            {
                // A notice for a wait already ended (by the socket's close).
                return;
            }

            _waiting = false;
            try
            {
                if (_poller is null)
                {
                    var wait = _wait;
                    _wait = default;
                    Observe(wait);
                }
                else if (socketClosed)
                {
                    End(SocketError.OperationAborted);
                }

                if (!_readPending)
                {
                    if (!_ended && !_completed)
                    {
                        NoticeEnd();
                    }

                    return;
                }

                if (!TryComplete(out result))
                {
                    return;
                }
            }
            catch (Exception ex)
            {
                // The stored error of an ended input, or something unforeseen: either way the input ends with it.
                _ended = true;
                _error ??= ex;
                failure = _error;
                if (!_readPending)
                {
                    _connection.OnInputEnded();
                    return;
                }
            }

            EndPendingRead();
        }

        if (failure is null)
        {
            _read.SetResult(result);
        }
        else
        {
            _read.SetException(failure);
        }
    }

    /// <summary>
    /// Under the lock, with no read pending and the socket readable: finds out whether that is the end of the input,
    /// leaving any data in the kernel for the next read.
    /// </summary>
    private void NoticeEnd()
    {
        int available;
        try
        {
            available = Socket.Available;
        }
        catch (ObjectDisposedException)
        {
            End(SocketError.OperationAborted);
            return;
        }
        catch (SocketException ex)
        {
            End(ex.SocketErrorCode);
            return;
        }

        // Nothing to read: either the end of the input (the read below sees it) or a stale wake-up (wait again).
        if (available == 0 && !TryReceive())
        {
            StartWait();
        }
    }

    private void CancelRead(CancellationToken token)
    {
        lock (_lock)
        {
            if (!_readPending || _readToken != token)
            {
                return;
            }

            EndPendingRead();
        }

        _read.SetException(new OperationCanceledException(token));
    }

    /// <summary>Under the lock: the pending read is about to be completed.</summary>
    private void EndPendingRead()
    {
        _readPending = false;
        _readCancellation.Unregister();
        _readCancellation = default;
        _readToken = default;
    }

    /// <summary>Under the lock: the socket's input ended, at the end of the stream or with an error.</summary>
    private void End(SocketError error)
    {
        _ended = true;
        _error = _connection.AbortReason ?? SocketErrors.ToException(error);
        _connection.OnInputEnded();
    }

    /// <summary>Gives back the buffers when the connection is disposed.</summary>
    public void Dispose() => Complete();

    ReadResult IValueTaskSource<ReadResult>.GetResult(short token) => _read.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _read.GetStatus(token);

    void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _read.OnCompleted(continuation, state, token, flags);
}
