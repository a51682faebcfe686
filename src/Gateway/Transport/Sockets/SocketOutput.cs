using System.IO.Pipelines;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;

namespace PushService.Gateway.Transport.Sockets;

/// <summary>
/// A connection's output on the lean transport: written bytes collect in rented buffers, and a flush hands them to
/// the socket right there, on the flushing thread, without waiting (the socket is non-blocking); the buffers go back
/// as soon as the kernel has taken their bytes. Only when the kernel's send buffer is full does a flush wait, on an
/// asynchronous send. Kestrel's socket transport instead keeps an output <see cref="Pipe"/> per connection, read by a
/// send loop.
/// </summary>
/// <remarks>
/// One writer at a time, as for any <see cref="PipeWriter"/>; <see cref="CancelPendingFlush"/> and disposal may come
/// from other threads. A write in progress (from the first <see cref="GetMemory"/> to the end of the flush) keeps its
/// buffers: a disposal meanwhile leaves them to that flush to give back, so that no buffer returns to the pool while
/// someone still writes into it.
/// </remarks>
internal sealed class SocketOutput : PipeWriter
{
    private const int Writing = 1;
    private const int Flushing = 2;
    private const int Disposed = 4;

    /// <summary>The most buffers one send gathers.</summary>
    private const int MaxGather = 64;

    [ThreadStatic]
    private static List<ArraySegment<byte>>? t_gather;

    private readonly LeanSocketConnection _connection;
    private PooledSegment? _head;
    private int _headStart;
    private PooledSegment? _tail;
    private long _unflushed;
    private int _state;
    private int _released;
    private bool _failed;
    private bool _completed;
    private volatile bool _cancelRequested;
    private CancellationTokenSource? _slowFlushCancellation;

    internal Socket Socket => _connection.Socket;

    public SocketOutput(LeanSocketConnection connection)
    {
        _connection = connection;
    }

    /// <summary>Whether the output holds a buffer now (bytes not yet sent); for tests of the idle state.</summary>
    internal bool HoldsBuffers => Volatile.Read(ref _head) is not null;

    /// <summary>The bytes buffered and not yet sent.</summary>
    internal long BufferedBytes
    {
        get
        {
            long bytes = -_headStart;
            for (var segment = _head; segment is not null; segment = segment.NextSegment)
            {
                bytes += segment.End;
            }

            return _head is null ? 0 : bytes;
        }
    }

    public override bool CanGetUnflushedBytes => true;

    public override long UnflushedBytes => _unflushed;

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        var segment = Reserve(sizeHint);
        return segment.Array.AsMemory(segment.End);
    }

    public override Span<byte> GetSpan(int sizeHint = 0)
    {
        var segment = Reserve(sizeHint);
        return segment.Array.AsSpan(segment.End);
    }

    public override void Advance(int bytes)
    {
        var tail = _tail ?? throw new InvalidOperationException("Advance without GetMemory.");
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bytes, tail.Free);
        tail.Grow(bytes);
        _unflushed += bytes;
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<FlushResult>(cancellationToken);
        }

        _unflushed = 0;
        if (_cancelRequested)
        {
            _cancelRequested = false;
            return new ValueTask<FlushResult>(new FlushResult(isCanceled: true, isCompleted: false));
        }

        if (_failed || SendNow())
        {
            EndWrite();
            return new ValueTask<FlushResult>(new FlushResult(isCanceled: false, isCompleted: _failed));
        }

        return FlushSlowAsync(cancellationToken);
    }

    public override void CancelPendingFlush()
    {
        if ((Volatile.Read(ref _state) & Flushing) != 0 && Volatile.Read(ref _slowFlushCancellation) is { } pending)
        {
            try
            {
                pending.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // That flush has just ended.
            }
        }
        else
        {
            _cancelRequested = true;
        }
    }

    /// <summary>The writer is done: what it wrote and did not flush is sent at the connection's disposal, as a pipe would.</summary>
    public override void Complete(Exception? exception = null)
    {
        if (!_completed)
        {
            _completed = true;
            EndWrite();
        }
    }

    /// <summary>
    /// At the connection's disposal: sends what is still buffered if the kernel takes it now, then gives the buffers
    /// back, unless a write is in progress, which then gives them back itself.
    /// </summary>
    public void Dispose()
    {
        if ((Interlocked.Or(ref _state, Disposed) & (Writing | Flushing)) == 0)
        {
            if (!_failed)
            {
                SendNow();
            }

            ReleaseAll();
        }
    }

    private PooledSegment Reserve(int sizeHint)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sizeHint);
        if (_completed)
        {
            throw new InvalidOperationException("Writing is not allowed after the writer was completed.");
        }

        ObjectDisposedException.ThrowIf((Interlocked.Or(ref _state, Writing) & Disposed) != 0, this);

        var tail = _tail;
        if (tail is not null && tail.Free >= Math.Max(sizeHint, 1))
        {
            return tail;
        }

        var segment = tail is null ? PooledSegment.Rent(sizeHint, 0) : tail.Append(sizeHint);
        if (tail is null)
        {
            _head = segment;
            _headStart = 0;
        }

        _tail = segment;
        return segment;
    }

    /// <summary>
    /// Hands everything buffered to the socket without waiting. True when it is all sent, or the socket failed
    /// (<see cref="_failed"/>); false when the kernel's buffer is full and the rest must wait.
    /// </summary>
    private bool SendNow()
    {
        while (SkipEmpty() is { } head)
        {
            int sent;
            SocketError error;
            try
            {
                if (head.NextSegment is null)
                {
                    sent = NonBlockingCalls.Send(Socket, head.Array.AsSpan(_headStart, head.End - _headStart), out error);
                }
                else
                {
                    // Several buffers go in one sendmsg, as Kestrel's sender does with a buffer list.
                    var gather = t_gather ??= new List<ArraySegment<byte>>(MaxGather);
                    gather.Add(new ArraySegment<byte>(head.Array, _headStart, head.End - _headStart));
                    for (var next = head.NextSegment; next is not null && gather.Count < MaxGather; next = next.NextSegment)
                    {
                        gather.Add(new ArraySegment<byte>(next.Array, 0, next.End));
                    }

                    try
                    {
                        sent = NonBlockingCalls.Send(Socket, gather, out error);
                    }
                    finally
                    {
                        gather.Clear();
                    }
                }
            }
            catch (ObjectDisposedException)
            {
                (sent, error) = (0, SocketError.OperationAborted);
            }

            if (error == SocketError.WouldBlock)
            {
                return false;
            }

            if (error != SocketError.Success)
            {
                Fail(error);
                return true;
            }

            Consume(sent);
        }

        return true;
    }

    /// <summary>
    /// Begins a flush that a <see cref="SendBatch"/> sends (<see cref="FlushAsync"/> otherwise): moves every buffered
    /// byte into <paramref name="destination"/> and gives the buffers back, so that none is held across the batch's
    /// round. False, leaving everything as it was, when there is nothing to send, more than fits, or the flush must take
    /// the ordinary way (a cancellation asked for, the socket failed, the connection disposed). The write stays in
    /// progress until <see cref="CompleteBatchedFlush"/>.
    /// </summary>
    internal bool TryMoveToBatch(Span<byte> destination, out int length)
    {
        length = 0;
        if (_cancelRequested || _failed || (Volatile.Read(ref _state) & (Writing | Disposed)) != Writing || SkipEmpty() is not { } head)
        {
            return false;
        }

        var start = _headStart;
        for (var segment = head; segment is not null; segment = segment.NextSegment)
        {
            var bytes = segment.Array.AsSpan(start, segment.End - start);
            if (bytes.Length > destination.Length - length)
            {
                length = 0;
                return false;
            }

            bytes.CopyTo(destination[length..]);
            length += bytes.Length;
            start = 0;
        }

        _unflushed = 0;
        Consume(length);
        return true;
    }

    /// <summary>
    /// Ends a batched flush with its send's result (bytes sent, or a negated errno) and tells
    /// <paramref name="completion"/>. What the kernel did not take (<paramref name="unsent"/>, when it took part or
    /// nothing because its buffer was full) is buffered again and goes on as an ordinary flush would.
    /// </summary>
    internal void CompleteBatchedFlush(int result, ReadOnlySpan<byte> unsent, IBatchedFlushCompletion completion)
    {
        if (result < 0 && result != -Errno.TryAgain)
        {
            Fail(SocketErrors.FromErrno(-result));
        }
        else if (!unsent.IsEmpty)
        {
            if ((Volatile.Read(ref _state) & Disposed) != 0)
            {
                // Disposed meanwhile: what is left cannot be buffered again, and there is nobody to send it to.
                Fail(SocketError.OperationAborted);
            }
            else
            {
                try
                {
                    var segment = Reserve(unsent.Length);
                    unsent.CopyTo(segment.Array.AsSpan(segment.End));
                    segment.Grow(unsent.Length);
                }
                catch (ObjectDisposedException)
                {
                    Fail(SocketError.OperationAborted);
                }
            }
        }

        if (_failed || SendNow())
        {
            EndWrite();
            completion.OnFlushed(new FlushResult(isCanceled: false, isCompleted: _failed));
            return;
        }

        _ = CompleteBatchedFlushSlowlyAsync(completion);
    }

    private async Task CompleteBatchedFlushSlowlyAsync(IBatchedFlushCompletion completion)
    {
        FlushResult result;
        try
        {
            result = await FlushSlowAsync(CancellationToken.None);
        }
        catch (Exception ex)
        {
            // Nothing may escape unobserved: the connection is of no further use.
            _failed = true;
            _connection.Abort(new ConnectionAbortedException("Sending failed.", ex));
            result = new FlushResult(isCanceled: false, isCompleted: true);
        }

        completion.OnFlushed(result);
    }

    /// <summary>Waits for the kernel to take the rest, one buffer at a time (a slow reader: rare, and not worth gathering).</summary>
    private async ValueTask<FlushResult> FlushSlowAsync(CancellationToken cancellationToken)
    {
        Interlocked.Or(ref _state, Flushing);
        var cancellation = new CancellationTokenSource();
        Volatile.Write(ref _slowFlushCancellation, cancellation);
        using var linked = cancellationToken.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), cancellation);
        try
        {
            while (SkipEmpty() is { } head)
            {
                var sent = await Socket.SendAsync(head.Array.AsMemory(_headStart, head.End - _headStart), SocketFlags.None, cancellation.Token);
                Consume(sent);
            }

            return new FlushResult(isCanceled: false, isCompleted: false);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // A send stopped half way leaves the stream at an unknown byte: the connection is of no further use. (Kestrel's
            // HTTP layer cancels a pending flush only when it aborts the connection anyway.)
            _failed = true;
            _connection.Abort(new ConnectionAbortedException("A pending flush was canceled."));
            cancellationToken.ThrowIfCancellationRequested();
            return new FlushResult(isCanceled: true, isCompleted: false);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            Fail(ex is SocketException socketException ? socketException.SocketErrorCode : SocketError.OperationAborted);
            return new FlushResult(isCanceled: false, isCompleted: true);
        }
        finally
        {
            Volatile.Write(ref _slowFlushCancellation, null);
            cancellation.Dispose();
            Interlocked.And(ref _state, ~Flushing);
            EndWrite();
        }
    }

    /// <summary>Gives back the buffers at the head that hold nothing more to send; returns the first that does.</summary>
    private PooledSegment? SkipEmpty()
    {
        PooledSegment.ReleaseConsumed(ref _head, ref _headStart, ref _tail);
        return _head;
    }

    private void Consume(int sent)
    {
        while (_head is not null && sent > 0)
        {
            var left = _head.End - _headStart;
            if (sent < left)
            {
                _headStart += sent;
                return;
            }

            sent -= left;
            _headStart = _head.End;
            SkipEmpty();
        }
    }

    /// <summary>The socket failed: nothing more can be sent; what is buffered is dropped.</summary>
    private void Fail(SocketError error)
    {
        _failed = true;
        if (error is not (SocketError.OperationAborted or SocketError.Interrupted))
        {
            // The peer is gone (a reset): the reading side learns it at once rather than at its next read.
            _connection.Abort(new ConnectionAbortedException($"Sending failed: {error}."));
        }

        PooledSegment.ReleaseAll(_head);
        _head = _tail = null;
        _headStart = 0;
    }

    /// <summary>A write ends: if the connection was disposed meanwhile, the buffers are this writer's to give back.</summary>
    private void EndWrite()
    {
        if ((Interlocked.And(ref _state, ~Writing) & Disposed) != 0 && (Volatile.Read(ref _state) & Flushing) == 0)
        {
            ReleaseAll();
        }
    }

    private void ReleaseAll()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            PooledSegment.ReleaseAll(_head);
            _head = _tail = null;
        }
    }
}
