using System.Collections;

namespace PushService.Gateway.Telemetry;

/// <summary>
/// The state of the gateway's log scopes: key-value lists, so the JSON console formatter writes each as its own
/// property (<c>"Scopes":[{"NodeId":"…","ConnectionId":"…"}]</c>) and OTLP logs carry them as attributes.
/// </summary>
internal sealed class LogScope : IReadOnlyList<KeyValuePair<string, object?>>
{
    private readonly KeyValuePair<string, object?>[] _items;

    private LogScope(params KeyValuePair<string, object?>[] items) => _items = items;

    /// <summary>Every request's scope on this node (one shared instance: nothing allocated per request for it).</summary>
    public static LogScope Node(string nodeId) => new(new KeyValuePair<string, object?>("NodeId", nodeId));

    /// <summary>A client command's scope: the node, the connection and, for a command about one, the channel.</summary>
    public static LogScope Command(string nodeId, string connectionId, string? channel) => channel is null
        ? new(new KeyValuePair<string, object?>("NodeId", nodeId), new KeyValuePair<string, object?>("ConnectionId", connectionId))
        : new(new KeyValuePair<string, object?>("NodeId", nodeId), new KeyValuePair<string, object?>("ConnectionId", connectionId),
            new KeyValuePair<string, object?>("Channel", channel));

    public KeyValuePair<string, object?> this[int index] => _items[index];

    public int Count => _items.Length;

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, object?>>)_items).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => string.Join(' ', _items.Select(i => $"{i.Key}:{i.Value}"));
}
