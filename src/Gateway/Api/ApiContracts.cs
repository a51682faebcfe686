using System.Text.Json;

namespace PushService.Gateway.Api;

// The REST API's bodies as the OpenAPI document describes them (/openapi/v1.json). The handlers read and write these
// shapes with Utf8JsonReader and Utf8JsonWriter directly (the data is carried as raw bytes, never bound to a model), so
// these records are the contract's description only; OpenApiTests checks real answers against the document.

/// <summary>A publication.</summary>
/// <param name="Data">Any JSON value, delivered to subscribers byte for byte (line breaks between tokens become spaces).</param>
/// <param name="IdempotencyKey">1 to 256 characters; the same key with the same data within the idempotency window returns the first answer and publishes nothing new.</param>
public sealed record PublishRequest(JsonElement Data, string? IdempotencyKey = null);

/// <summary>Where a publication was stored.</summary>
/// <param name="Channel">The channel.</param>
/// <param name="Epoch">The channel's epoch: a new one means its history was lost.</param>
/// <param name="Offset">The publication's offset: gap-free and increasing by one within an epoch.</param>
public sealed record PublishResponse(string Channel, string Epoch, long Offset);

/// <summary>One publication to many channels.</summary>
/// <param name="Channels">The channels, at most PushService:Limits:MaxBroadcastChannels; every name is checked before any is published.</param>
/// <param name="Data">Any JSON value.</param>
/// <param name="IdempotencyKey">As for a publish, per channel: a retry completes a broadcast that failed midway without duplicates.</param>
public sealed record BroadcastRequest(IReadOnlyList<string> Channels, JsonElement Data, string? IdempotencyKey = null);

/// <summary>Where each channel's publication was stored, in the order asked.</summary>
public sealed record BroadcastResponse(IReadOnlyList<PublishResponse> Results);

/// <summary>A stored publication.</summary>
/// <param name="Data">The published JSON value.</param>
/// <param name="Offset">Its offset in the channel.</param>
public sealed record HistoryMessage(long Offset, JsonElement Data);

/// <summary>A channel's history: where the stream stands and the publications asked for, in offset order.</summary>
/// <param name="Offset">The channel's newest offset.</param>
/// <param name="Epoch">The channel's epoch.</param>
/// <param name="Messages">The publications, in offset order.</param>
public sealed record HistoryResponse(string Epoch, long Offset, IReadOnlyList<HistoryMessage> Messages);

/// <summary>A client in a channel.</summary>
/// <param name="User">The user id; empty for an anonymous client.</param>
/// <param name="Client">The client id.</param>
public sealed record PresenceClient(string Client, string User);

/// <summary>Who is in a channel now.</summary>
public sealed record PresenceResponse(IReadOnlyList<PresenceClient> Clients);

/// <summary>A channel with subscribers somewhere in the cluster.</summary>
public sealed record ChannelSubscribers(string Channel, int Subscribers);

/// <summary>Every channel with subscribers, across the cluster.</summary>
public sealed record ChannelsResponse(IReadOnlyList<ChannelSubscribers> Channels);

/// <summary>A live node, as of its last heartbeat (the answering node's own numbers are exact).</summary>
public sealed record NodeInfo(string Node, int Connections, int Subscriptions, long UptimeSeconds);

/// <summary>The live nodes of the cluster.</summary>
public sealed record InfoResponse(IReadOnlyList<NodeInfo> Nodes);

/// <summary>How to disconnect a user.</summary>
/// <param name="Reconnect">Tell the clients to reconnect (close 1001) rather than stop (1000). Default false.</param>
public sealed record DisconnectRequest(bool Reconnect = false);

/// <summary>How many connections were closed across the cluster.</summary>
public sealed record DisconnectResponse(int Disconnected);

/// <summary>A node's recent rates.</summary>
/// <param name="PublishRate">Publications accepted per second over the node's newest rateSeconds.</param>
/// <param name="DeliveryRate">Pushes queued to subscribers per second over the same seconds.</param>
/// <param name="Disconnects">Connections ended in the last five minutes, by close code.</param>
/// <param name="Node">The node id.</param>
public sealed record NodeActivityRates(string Node, double PublishRate, double DeliveryRate, IReadOnlyDictionary<string, long> Disconnects);

/// <summary>The cluster's last five minutes, second by second.</summary>
/// <param name="Second">The Unix second of the newest bucket: the newest one every node has reported.</param>
/// <param name="RateSeconds">Seconds a node's rates are averaged over.</param>
/// <param name="Publications">Publications accepted by all nodes in each of the 300 seconds up to 'second', oldest first.</param>
/// <param name="Deliveries">Pushes queued by all nodes in the same seconds.</param>
/// <param name="Disconnects">Connections ended on all nodes in the window, by close code.</param>
/// <param name="Nodes">Each node's rates and disconnects.</param>
public sealed record ActivityResponse(
    long Second,
    int RateSeconds,
    IReadOnlyList<int> Publications,
    IReadOnlyList<int> Deliveries,
    IReadOnlyDictionary<string, long> Disconnects,
    IReadOnlyList<NodeActivityRates> Nodes);
