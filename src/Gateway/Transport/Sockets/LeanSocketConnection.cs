using System.Buffers;
using System.Collections;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace PushService.Gateway.Transport.Sockets;

/// <summary>
/// One accepted socket on the lean transport, as Kestrel sees a connection: its transport (<see cref="SocketInput"/>,
/// <see cref="SocketOutput"/>) and its features. It is its own feature collection: the features a transport provides
/// are this object, and the few others set on it (Kestrel's, TLS's) go in a small array rather than a dictionary.
/// </summary>
internal sealed class LeanSocketConnection : ConnectionContext, IDuplexPipe, IFeatureCollection, IConnectionIdFeature,
    IConnectionTransportFeature, IConnectionItemsFeature, IConnectionLifetimeFeature, IConnectionEndPointFeature,
    IMemoryPoolFeature, IConnectionSocketFeature
{
    private static long s_lastId = DateTime.UtcNow.Ticks;

    private readonly SocketInput _input;
    private readonly SocketOutput _output;
    private string? _id;
    private IDuplexPipe _transport;
    private IDictionary<object, object?>? _items;
    private EndPoint? _localEndPoint;
    private EndPoint? _remoteEndPoint;
    private CancellationTokenSource? _closed;
    private int _closedFired;
    private int _shutDown;
    private int _detached;
    private ConnectionAbortedException? _abortReason;
    private KeyValuePair<Type, object?>[]? _extraFeatures;
    private int _extraCount;
    private int _revision;

    /// <summary>Over an accepted <paramref name="socket"/>, whose input waits through <paramref name="poller"/> (the runtime when null).</summary>
    public LeanSocketConnection(Socket socket, ReadinessPoller? poller)
    {
        Socket = socket;
        _input = new SocketInput(this, poller);
        _output = new SocketOutput(this);
        _transport = this;
    }

    public Socket Socket { get; }

    /// <summary>Whether the connection holds any buffer now; for tests of the idle state.</summary>
    internal bool HoldsBuffers => _input.HoldsBuffers || _output.HoldsBuffers;

    /// <summary>Why the connection was aborted, once it was.</summary>
    public ConnectionAbortedException? AbortReason => Volatile.Read(ref _abortReason);

    public override string ConnectionId
    {
        get => _id ??= NewId();
        set => _id = value;
    }

    public override IFeatureCollection Features => this;

    public override IDictionary<object, object?> Items
    {
        get => _items ??= new ConnectionItems();
        set => _items = value;
    }

    public override IDuplexPipe Transport
    {
        get => _transport;
        set => _transport = value;
    }

    PipeReader IDuplexPipe.Input => _input;

    PipeWriter IDuplexPipe.Output => _output;

    public MemoryPool<byte> MemoryPool => MemoryPool<byte>.Shared;

    public override EndPoint? LocalEndPoint
    {
        get => _localEndPoint ??= TryEndPoint(static socket => socket.LocalEndPoint);
        set => _localEndPoint = value;
    }

    public override EndPoint? RemoteEndPoint
    {
        get => _remoteEndPoint ??= TryEndPoint(static socket => socket.RemoteEndPoint);
        set => _remoteEndPoint = value;
    }

    /// <summary>Fires when the input ends (the peer closed or reset) or the connection is aborted or disposed.</summary>
    /// <remarks>Created on first use: a WebSocket served by the gateway's own middleware never asks for it.</remarks>
    public override CancellationToken ConnectionClosed
    {
        get
        {
            var source = Volatile.Read(ref _closed);
            if (source is null)
            {
                var created = new CancellationTokenSource();
                source = Interlocked.CompareExchange(ref _closed, created, null) ?? created;
                if (Volatile.Read(ref _closedFired) != 0)
                {
                    source.Cancel();
                }
            }

            return source.Token;
        }
        set => throw new NotSupportedException("The lean transport's ConnectionClosed cannot be replaced.");
    }

    public override void Abort() => Abort(new ConnectionAbortedException("The connection was aborted by the application."));

    public override void Abort(ConnectionAbortedException abortReason)
    {
        Interlocked.CompareExchange(ref _abortReason, abortReason, null);
        Shutdown();
        OnInputEnded();
    }

    /// <summary>
    /// After the connection's middleware is done: sends what the kernel takes now, closes, gives the buffers back. Not
    /// for a connection <see cref="Detach"/>ed: whoever took it closes it with <see cref="CloseDetached"/>.
    /// </summary>
    public override ValueTask DisposeAsync()
    {
        if (Volatile.Read(ref _detached) == 0)
        {
            Close();
        }

        return base.DisposeAsync();
    }

    /// <summary>
    /// Takes the connection away from Kestrel, which then forgets it once its middleware returns (its dispose closes
    /// nothing): the caller runs it on and closes it with <see cref="CloseDetached"/>. Kestrel's bookkeeping of a
    /// connection (its dispatcher's state, manager entries, metrics context, logging scopes, the features it set here)
    /// is a quarter of an idle WebSocket's memory and does nothing for one. False where the transport is not this
    /// object's own (TLS or another middleware wraps it): that connection stays Kestrel's.
    /// </summary>
    public bool Detach()
    {
        if (!ReferenceEquals(_transport, this) || Interlocked.Exchange(ref _detached, 1) != 0)
        {
            return false;
        }

        // Kestrel's features refer to its connection objects; a detached connection must not keep those alive.
        _extraFeatures = null;
        _extraCount = 0;
        _items = null;

        // Read at admission (per-IP limits); read again from the socket should anyone ask later.
        _localEndPoint = null;
        _remoteEndPoint = null;
        _revision++;
        return true;
    }

    /// <summary>Closes a <see cref="Detach"/>ed connection, as <see cref="DisposeAsync"/> closes one of Kestrel's.</summary>
    public void CloseDetached() => Close();

    private void Close()
    {
        _output.Dispose();
        Shutdown();
        _input.Dispose();
        OnInputEnded();
    }

    /// <summary>The input ended or the connection closed: <see cref="ConnectionClosed"/> fires, off the caller's thread.</summary>
    internal void OnInputEnded()
    {
        if (Interlocked.Exchange(ref _closedFired, 1) == 0 && Volatile.Read(ref _closed) is { } source)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static source => source.Cancel(), source, preferLocal: false);
        }
    }

    private void Shutdown()
    {
        if (Interlocked.Exchange(ref _shutDown, 1) != 0)
        {
            return;
        }

        try
        {
            // Both directions, as Kestrel's transport does: the peer sees the end of the stream.
            Socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already reset or closed: nothing left to shut down.
        }

        Socket.Dispose();
        _input.OnSocketClosed();
    }

    private EndPoint? TryEndPoint(Func<Socket, EndPoint?> read)
    {
        try
        {
            return read(Socket);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return null;
        }
    }

    /// <summary>An id unique in the process, in the form Kestrel uses (13 characters of base 32).</summary>
    private static string NewId()
    {
        const string Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
        var id = Interlocked.Increment(ref s_lastId);
        return string.Create(13, id, static (chars, value) =>
        {
            for (var i = chars.Length - 1; i >= 0; i--)
            {
                chars[i] = Alphabet[(int)(value & 31)];
                value >>= 5;
            }
        });
    }

    // The feature collection. The transport's own features are this object; others are kept in _extraFeatures, where a
    // null value also hides one of the own ones.

    bool IFeatureCollection.IsReadOnly => false;

    int IFeatureCollection.Revision => _revision;

    object? IFeatureCollection.this[Type key]
    {
        get => GetFeature(key);
        set => SetFeature(key, value);
    }

    TFeature? IFeatureCollection.Get<TFeature>() where TFeature : default => (TFeature?)GetFeature(typeof(TFeature));

    void IFeatureCollection.Set<TFeature>(TFeature? instance) where TFeature : default => SetFeature(typeof(TFeature), instance);

    IEnumerator<KeyValuePair<Type, object>> IEnumerable<KeyValuePair<Type, object>>.GetEnumerator()
    {
        for (var i = 0; i < _extraCount; i++)
        {
            if (_extraFeatures![i].Value is { } value)
            {
                yield return new KeyValuePair<Type, object>(_extraFeatures[i].Key, value);
            }
        }

        foreach (var type in OwnFeatures)
        {
            if (IndexOfExtra(type) < 0)
            {
                yield return new KeyValuePair<Type, object>(type, this);
            }
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => ((IEnumerable<KeyValuePair<Type, object>>)this).GetEnumerator();

    private static readonly Type[] OwnFeatures =
    [
        typeof(IConnectionIdFeature), typeof(IConnectionTransportFeature), typeof(IConnectionItemsFeature),
        typeof(IConnectionLifetimeFeature), typeof(IConnectionEndPointFeature), typeof(IMemoryPoolFeature),
        typeof(IConnectionSocketFeature),
    ];

    private object? GetFeature(Type type)
    {
        var index = IndexOfExtra(type);
        if (index >= 0)
        {
            return _extraFeatures![index].Value;
        }

        return Array.IndexOf(OwnFeatures, type) >= 0 ? this : null;
    }

    private void SetFeature(Type type, object? instance)
    {
        _revision++;
        var index = IndexOfExtra(type);
        if (index >= 0)
        {
            _extraFeatures![index] = new KeyValuePair<Type, object?>(type, instance);
            return;
        }

        if (instance is null && Array.IndexOf(OwnFeatures, type) < 0)
        {
            return;
        }

        if (_extraFeatures is null || _extraCount == _extraFeatures.Length)
        {
            // Kestrel sets five on every connection (heartbeat, completion, lifetime notification, metrics context and tags).
            Array.Resize(ref _extraFeatures, _extraCount == 0 ? 5 : _extraCount * 2);
        }

        _extraFeatures[_extraCount++] = new KeyValuePair<Type, object?>(type, instance);
    }

    private int IndexOfExtra(Type type)
    {
        for (var i = 0; i < _extraCount; i++)
        {
            if (_extraFeatures![i].Key == type)
            {
                return i;
            }
        }

        return -1;
    }
}
