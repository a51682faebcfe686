using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using PushService.Gateway.Protocol;
using PushService.Gateway.Telemetry;

namespace PushService.Gateway.Connections;

/// <summary>
/// This node's open connections, WebSockets and event streams: registered while they run, walked by the heartbeat (the
/// WebSockets only: streams answer no pings), the drain and the node's gauges, and closed by user for the REST API's
/// disconnect. The node's places (<c>Limits:MaxConnections</c>, shared by both kinds) and each user's count for the
/// per-user limit are here too.
/// </summary>
public sealed class ConnectionRegistry
{
    private readonly ConcurrentDictionary<string, ClientConnection> _connections = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SseSession> _streams = new(StringComparer.Ordinal);
    private int _places;

    /// <summary>Creates the registry and its gauges of the connections' outbound queues on <paramref name="metrics"/>' meter.</summary>
    public ConnectionRegistry(PushMetrics metrics)
    {
        var meter = metrics.Meter;
        meter.CreateObservableUpDownCounter("pushservice.outbound.depth", () => Outbound().Frames, "{frame}",
            "Frames queued for client sockets and not yet written, over all connections.");
        meter.CreateObservableUpDownCounter("pushservice.outbound.size", () => Outbound().Bytes, "By",
            "Bytes queued for client sockets and not yet written, over all connections.");
        meter.CreateObservableGauge("pushservice.outbound.depth.max", () => Outbound().Deepest, "{frame}",
            "The deepest outbound queue of any one connection.");
    }

    /// <summary>Open connections on this node, WebSockets and event streams.</summary>
    public int Count => _connections.Count + _streams.Count;

    /// <summary>
    /// Takes one of the node's <paramref name="max"/> places (0: no limit) for a connection being admitted, WebSocket or
    /// event stream; false, holding nothing, when the node is full. The place is taken before the check, so a storm of
    /// simultaneous connects cannot overshoot the limit. <see cref="ReleasePlace"/> gives it back when the connection ends.
    /// </summary>
    internal bool TryTakePlace(int max)
    {
        var taken = Interlocked.Increment(ref _places);
        if (max <= 0 || taken <= max)
        {
            return true;
        }

        ReleasePlace();
        return false;
    }

    /// <summary>Gives back a place taken by <see cref="TryTakePlace"/>.</summary>
    internal void ReleasePlace() => Interlocked.Decrement(ref _places);

    /// <summary>Each user's connections on this node, for the per-user limit.</summary>
    internal UserSlots Users { get; } = new();

    /// <summary>Every open connection.</summary>
    /// <remarks>
    /// Walks the map without its locks; <c>_connections.Values</c> would lock every bucket and copy all connections,
    /// each second for the heartbeat (a large-object-heap array from about 10,600 connections on).
    /// </remarks>
    internal IEnumerable<ClientConnection> All
    {
        get
        {
            foreach (var (_, connection) in _connections)
            {
                yield return connection;
            }
        }
    }

    /// <summary>Every open connection of either kind, for what treats them alike: the drain, disconnects, the gauges.</summary>
    internal IEnumerable<IOpenSession> Sessions
    {
        get
        {
            foreach (var (_, connection) in _connections)
            {
                yield return connection;
            }

            foreach (var (_, stream) in _streams)
            {
                yield return stream;
            }
        }
    }

    internal void Add(ClientConnection connection) => _connections.TryAdd(connection.Id, connection);

    internal void Add(SseSession stream) => _streams.TryAdd(stream.Id, stream);

    /// <summary>Removes an event stream that ended, giving back its user's slot.</summary>
    internal void Remove(SseSession stream)
    {
        if (_streams.TryRemove(stream.Id, out _) && stream.UserId.Length > 0)
        {
            Users.Release(stream.UserId);
        }
    }

    /// <summary>Removes a connection that closed, giving back its user's slot.</summary>
    internal void Remove(ClientConnection connection)
    {
        if (_connections.TryRemove(connection.Id, out _) && connection.IsConnected && connection.UserId.Length > 0)
        {
            Users.Release(connection.UserId);
        }
    }

    /// <summary>Closes the connections of <paramref name="user"/> on this node and says how many there were.</summary>
    public int DisconnectUser(string user, Disconnect disconnect)
    {
        var count = 0;
        foreach (var connection in Sessions)
        {
            if (connection.IsConnected && string.Equals(connection.UserId, user, StringComparison.Ordinal))
            {
                connection.RequestClose(disconnect);
                count++;
            }
        }

        return count;
    }

    // One walk per instrument per collection: a few thousand connections, a few microseconds each, every scrape.
    private (long Frames, long Bytes, long Deepest) Outbound()
    {
        long frames = 0, bytes = 0, deepest = 0;
        foreach (var connection in Sessions)
        {
            var queued = connection.Queue.Count;
            frames += queued;
            bytes += connection.Queue.Bytes;
            deepest = Math.Max(deepest, queued);
        }

        return (frames, bytes, deepest);
    }
}

/// <summary>An open connection of either transport, as the registry's walkers see it.</summary>
internal interface IOpenSession
{
    string Id { get; }

    /// <summary>The user id from the token; empty for an anonymous client.</summary>
    string UserId { get; }

    /// <summary>True once the client is admitted (a WebSocket after its <c>connect</c>; a stream from the start).</summary>
    bool IsConnected { get; }

    OutboundQueue Queue { get; }

    /// <summary>Closes it, telling the client why (a <c>disconnect</c> push) after what is queued.</summary>
    void RequestClose(Disconnect disconnect);

    /// <summary>Ends it at once.</summary>
    void Abort();
}
