using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using PushService.Broker;
using PushService.Gateway.Configuration;
using PushService.Broker.Control;
using PushService.Gateway.Cluster;
using PushService.Gateway.Protocol;
using PushService.Gateway.Publishing;

namespace PushService.Gateway.Api;

/// <summary>The REST API of contract section 2. Each handler validates its input and answers with problem details on failure.</summary>
internal static class PushApi
{
    public static async Task<IResult> PublishAsync(string channel, HttpContext context, Publisher publisher, NamespaceResolver namespaces,
        IOptions<PushServiceOptions> options)
    {
        var limits = options.Value.Limits;
        var name = Uri.UnescapeDataString(channel);
        if (ResolveChannel(name, namespaces, out var ns) is { } invalid)
        {
            return invalid;
        }

        var bytes = await RequestBody.ReadAsync(context.Request, limits.MaxMessageBytes, context.RequestAborted);
        if (bytes is null)
        {
            return ApiProblems.TooLarge(limits.MaxMessageBytes);
        }

        var body = RequestBody.Parse(bytes, broadcast: false, out var error);
        if (body is null)
        {
            return ApiProblems.BadRequest(error!);
        }

        try
        {
            var result = await publisher.PublishAsync(name, ns!, body.Data!, body.IdempotencyKey, fromApi: true, context.RequestAborted);
            return RawJsonResult.Write((Channel: name, result.Position), static (w, s) => WritePosition(w, s.Channel, s.Position));
        }
        catch (BrokerUnavailableException ex)
        {
            return ApiProblems.Unavailable(ex.RetryAfter, ex.Message);
        }
        catch (IdempotencyConflictException ex)
        {
            return ApiProblems.Conflict(ex.Message);
        }
    }

    public static async Task<IResult> BroadcastAsync(HttpContext context, Publisher publisher, NamespaceResolver namespaces, IOptions<PushServiceOptions> options)
    {
        var limits = options.Value.Limits;

        // Room for the channel list beside data of the largest allowed size.
        var bodyLimit = limits.MaxMessageBytes + (limits.MaxBroadcastChannels * (ChannelName.MaxLength + 3)) + 1024;
        var bytes = await RequestBody.ReadAsync(context.Request, bodyLimit, context.RequestAborted);
        if (bytes is null)
        {
            return ApiProblems.TooLarge(bodyLimit);
        }

        var body = RequestBody.Parse(bytes, broadcast: true, out var error);
        if (body is null)
        {
            return ApiProblems.BadRequest(error!);
        }

        if (body.Data!.Length > limits.MaxMessageBytes)
        {
            return ApiProblems.TooLarge(limits.MaxMessageBytes);
        }

        if (body.Channels is not { Count: > 0 } channels)
        {
            return ApiProblems.BadRequest("'channels' must name at least one channel.");
        }

        if (channels.Count > limits.MaxBroadcastChannels)
        {
            return ApiProblems.BadRequest($"A broadcast names at most {limits.MaxBroadcastChannels} channels (PushService:Limits:MaxBroadcastChannels).");
        }

        if (channels.Distinct(StringComparer.Ordinal).Count() != channels.Count)
        {
            return ApiProblems.BadRequest("'channels' must not repeat a channel.");
        }

        // Everything is checked before anything is published, so a bad name never leaves a half-done broadcast.
        var resolved = new List<(string Channel, NamespaceOptions Ns)>(channels.Count);
        foreach (var channel in channels)
        {
            if (ResolveChannel(channel, namespaces, out var ns) is { } invalid)
            {
                return invalid;
            }

            resolved.Add((channel, ns!));
        }

        var results = new List<(string Channel, StreamPosition Position)>(resolved.Count);
        try
        {
            foreach (var (channel, ns) in resolved)
            {
                var result = await publisher.PublishAsync(channel, ns, body.Data, body.IdempotencyKey, fromApi: true, context.RequestAborted);
                results.Add((channel, result.Position));
            }
        }
        catch (BrokerUnavailableException ex)
        {
            // Channels already published keep their publications; a retry with the same idempotency key completes the rest.
            return ApiProblems.Unavailable(ex.RetryAfter, $"{ex.Message} {results.Count} of {resolved.Count} channels were published; retry with the same idempotency key.");
        }
        catch (IdempotencyConflictException ex)
        {
            return ApiProblems.Conflict(ex.Message);
        }

        return RawJsonResult.Write(results, static (w, r) =>
        {
            w.WriteStartArray("results"u8);
            foreach (var (channel, position) in r)
            {
                w.WriteStartObject();
                WritePosition(w, channel, position);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        });
    }

    public static async Task<IResult> HistoryAsync(string channel, long? since, string? epoch, int? limit, HttpContext context, IBroker broker,
        NamespaceResolver namespaces, IOptions<PushServiceOptions> options)
    {
        var name = Uri.UnescapeDataString(channel);
        if (ResolveChannel(name, namespaces, out _) is { } invalid)
        {
            return invalid;
        }

        if (since < 0 || limit < 0)
        {
            return ApiProblems.BadRequest("'since' and 'limit' must not be negative.");
        }

        if (epoch is not null && since is null)
        {
            return ApiProblems.BadRequest("'epoch' goes with 'since'.");
        }

        var maxLimit = options.Value.Limits.MaxHistoryLimit;
        try
        {
            if (since is not null && epoch is null)
            {
                // 'since' alone means the current epoch.
                epoch = (await broker.HistoryAsync(name, new HistoryQuery { Limit = 0 }, context.RequestAborted)).Position.Epoch;
            }

            var query = new HistoryQuery
            {
                Since = since is { } s ? new StreamPosition(s, epoch!) : null,
                Limit = Math.Min(limit ?? maxLimit, maxLimit),
            };
            var history = await broker.HistoryAsync(name, query, context.RequestAborted);
            return RawJsonResult.Write(history, static (w, h) =>
            {
                w.WriteString("epoch"u8, h.Position.Epoch);
                w.WriteNumber("offset"u8, h.Position.Offset);
                FrameEncoder.WriteMessages(w, h.Publications);
            });
        }
        catch (BrokerUnavailableException ex)
        {
            return ApiProblems.Unavailable(ex.RetryAfter, ex.Message);
        }
    }

    public static async Task<IResult> PresenceAsync(string channel, HttpContext context, NamespaceResolver namespaces, IPresenceStore presence)
    {
        var name = Uri.UnescapeDataString(channel);
        if (ResolveChannel(name, namespaces, out var ns) is { } invalid)
        {
            return invalid;
        }

        if (!ns!.Presence)
        {
            return ApiProblems.NotFound("Presence is not enabled for this channel's namespace.");
        }

        try
        {
            var entries = await presence.GetAsync(name, context.RequestAborted);
            return RawJsonResult.Write(entries, static (w, e) => FrameEncoder.WriteClients(w, e));
        }
        catch (BrokerUnavailableException ex)
        {
            return ApiProblems.Unavailable(ex.RetryAfter, ex.Message);
        }
    }

    public static async Task<IResult> ChannelsAsync(HttpContext context, ClusterService cluster)
    {
        IReadOnlyList<(string Channel, int Subscribers)> channels;
        try
        {
            channels = await cluster.ChannelsAsync(context.RequestAborted);
        }
        catch (BrokerUnavailableException ex)
        {
            return ApiProblems.Unavailable(ex.RetryAfter, ex.Message);
        }

        return RawJsonResult.Write(channels, static (w, c) =>
        {
            w.WriteStartArray("channels"u8);
            foreach (var (channel, subscribers) in c)
            {
                w.WriteStartObject();
                w.WriteString("channel"u8, channel);
                w.WriteNumber("subscribers"u8, subscribers);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        });
    }

    public static async Task<IResult> InfoAsync(HttpContext context, ClusterService cluster)
    {
        IReadOnlyList<NodeReport> nodes;
        try
        {
            nodes = await cluster.NodesAsync(context.RequestAborted);
        }
        catch (BrokerUnavailableException ex)
        {
            return ApiProblems.Unavailable(ex.RetryAfter, ex.Message);
        }

        return RawJsonResult.Write(nodes, static (w, n) =>
        {
            w.WriteStartArray("nodes"u8);
            foreach (var node in n)
            {
                w.WriteStartObject();
                w.WriteString("node"u8, node.Node);
                w.WriteNumber("connections"u8, node.Connections);
                w.WriteNumber("subscriptions"u8, node.Subscriptions);
                w.WriteNumber("uptimeSeconds"u8, node.UptimeSeconds);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        });
    }

    /// <summary>
    /// The cluster's activity over the last five minutes (an extension of the contract, for the web console): publications
    /// and deliveries per second, each node's rates and disconnects by close code.
    /// </summary>
    public static async Task<IResult> ActivityAsync(HttpContext context, ClusterService cluster, TimeProvider time)
    {
        IReadOnlyList<NodeReport> nodes;
        try
        {
            nodes = await cluster.NodesAsync(context.RequestAborted);
        }
        catch (BrokerUnavailableException ex)
        {
            return ApiProblems.Unavailable(ex.RetryAfter, ex.Message);
        }

        return RawJsonResult.Write(ClusterActivity.From(nodes, time.GetUtcNow()), static (w, a) =>
        {
            w.WriteNumber("second"u8, a.Second);
            w.WriteNumber("rateSeconds"u8, ClusterActivity.RateSeconds);
            WriteSeries(w, "publications"u8, a.Publications);
            WriteSeries(w, "deliveries"u8, a.Deliveries);
            WriteDisconnects(w, a.Disconnects);
            w.WriteStartArray("nodes"u8);
            foreach (var node in a.Nodes)
            {
                w.WriteStartObject();
                w.WriteString("node"u8, node.Node);
                w.WriteNumber("publishRate"u8, node.PublishRate);
                w.WriteNumber("deliveryRate"u8, node.DeliveryRate);
                WriteDisconnects(w, node.Disconnects);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        });

        static void WriteSeries(Utf8JsonWriter writer, ReadOnlySpan<byte> name, int[] series)
        {
            writer.WriteStartArray(name);
            foreach (var value in series)
            {
                writer.WriteNumberValue(value);
            }

            writer.WriteEndArray();
        }

        static void WriteDisconnects(Utf8JsonWriter writer, IReadOnlyDictionary<int, long> disconnects)
        {
            writer.WriteStartObject("disconnects"u8);
            foreach (var (code, count) in disconnects.OrderBy(d => d.Key))
            {
                writer.WriteNumber(code.ToString(System.Globalization.CultureInfo.InvariantCulture), count);
            }

            writer.WriteEndObject();
        }
    }

    public static async Task<IResult> DisconnectUserAsync(string user, HttpContext context, ClusterService cluster)
    {
        var bytes = await RequestBody.ReadAsync(context.Request, 4096, context.RequestAborted);
        if (bytes is null)
        {
            return ApiProblems.TooLarge(4096);
        }

        var reconnect = false;
        if (bytes.Length > 0)
        {
            try
            {
                using var document = JsonDocument.Parse(bytes);
                if (document.RootElement.ValueKind != JsonValueKind.Object)
                {
                    return ApiProblems.BadRequest("The body must be a JSON object such as {\"reconnect\":true}.");
                }

                if (document.RootElement.TryGetProperty("reconnect", out var value))
                {
                    if (value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                    {
                        return ApiProblems.BadRequest("'reconnect' must be a boolean.");
                    }

                    reconnect = value.GetBoolean();
                }
            }
            catch (JsonException ex)
            {
                return ApiProblems.BadRequest($"The body is not valid JSON: {ex.Message}");
            }
        }

        try
        {
            var count = await cluster.DisconnectUserAsync(Uri.UnescapeDataString(user), reconnect, context.RequestAborted);
            return RawJsonResult.Write(count, static (w, c) => w.WriteNumber("disconnected"u8, c));
        }
        catch (BrokerUnavailableException ex)
        {
            return ApiProblems.Unavailable(ex.RetryAfter, ex.Message);
        }
    }

    private static IResult? ResolveChannel(string channel, NamespaceResolver namespaces, out NamespaceOptions? ns)
    {
        ns = null;
        if (!ChannelName.IsValid(channel))
        {
            return ApiProblems.BadRequest($"'{Shorten(channel)}' is not a valid channel name: 1 to 255 characters of A-Z a-z 0-9 _ - : . @ / = #.");
        }

        ns = namespaces.Resolve(channel);
        return ns is null ? ApiProblems.NotFound($"The namespace '{NamespaceResolver.NamespaceOf(channel)}' is not configured.") : null;
    }

    private static void WritePosition(Utf8JsonWriter writer, string channel, StreamPosition position)
    {
        writer.WriteString("channel"u8, channel);
        writer.WriteString("epoch"u8, position.Epoch);
        writer.WriteNumber("offset"u8, position.Offset);
    }

    private static string Shorten(string value) => value.Length > 64 ? value[..64] + "…" : value;
}
