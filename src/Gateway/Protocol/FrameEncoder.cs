using System.Buffers;
using System.Buffers.Text;
using System.Text;
using System.Text.Json;
using PushService.Broker;

namespace PushService.Gateway.Protocol;

/// <summary>
/// Encodes server frames. The <c>message</c> push is written by hand into one exact-size array: it is the hot path,
/// encoded once per publication per node, and its parts need no escaping (channel names are a safe ASCII subset,
/// <c>data</c> is raw JSON). Everything else goes through <see cref="Utf8JsonWriter"/>.
/// </summary>
public static class FrameEncoder
{
    private static readonly byte[] MessagePrefix = "{\"type\":\"message\",\"channel\":\""u8.ToArray();
    private static readonly byte[] OffsetPart = "\",\"offset\":"u8.ToArray();
    private static readonly byte[] DataPart = ",\"data\":"u8.ToArray();

    /// <summary>The <c>message</c> push for <paramref name="publication"/>.</summary>
    public static byte[] Message(Publication publication)
    {
        var channel = publication.Channel;
        var data = publication.Data.Span;
        Span<byte> offsetText = stackalloc byte[20];
        Utf8Formatter.TryFormat(publication.Offset, offsetText, out var offsetLength);

        var length = MessagePrefix.Length + channel.Length + OffsetPart.Length + offsetLength + DataPart.Length + data.Length + 1;
        var frame = new byte[length];
        var span = frame.AsSpan();
        MessagePrefix.CopyTo(span);
        var position = MessagePrefix.Length;
        position += Encoding.ASCII.GetBytes(channel, span[position..]);
        OffsetPart.CopyTo(span[position..]);
        position += OffsetPart.Length;
        offsetText[..offsetLength].CopyTo(span[position..]);
        position += offsetLength;
        DataPart.CopyTo(span[position..]);
        position += DataPart.Length;
        data.CopyTo(span[position..]);
        position += data.Length;
        span[position] = (byte)'}';
        return frame;
    }

    /// <summary>A reply with an empty result: <c>{"id":N,"result":{}}</c>.</summary>
    public static byte[] EmptyResult(long id) => Write(id, static (w, _) => { }, 0);

    /// <summary>A reply whose result is written by <paramref name="writeResult"/> between the result's braces.</summary>
    public static byte[] Result<TState>(long id, Action<Utf8JsonWriter, TState> writeResult, TState state) => Write(id, writeResult, state);

    /// <summary>An error reply.</summary>
    public static byte[] Error(long id, string code, string message)
    {
        return Encode((id, code, message), static (w, s) =>
        {
            w.WriteNumber("id"u8, s.id);
            w.WriteStartObject("error"u8);
            w.WriteString("code"u8, s.code);
            w.WriteString("message"u8, s.message);
            w.WriteEndObject();
        });
    }

    /// <summary>The <c>disconnect</c> push sent just before the server closes.</summary>
    public static byte[] DisconnectPush(Disconnect disconnect)
    {
        return Encode(disconnect, static (w, d) =>
        {
            w.WriteString("type"u8, "disconnect"u8);
            w.WriteNumber("code"u8, d.Code);
            w.WriteString("reason"u8, d.Reason);
            w.WriteBoolean("reconnect"u8, d.Reconnect);
        });
    }

    /// <summary>The server <c>ping</c> push; the same bytes serve every connection.</summary>
    public static ReadOnlyMemory<byte> PingPush { get; } = """{"type":"ping"}"""u8.ToArray();

    /// <summary>The <c>unsubscribed</c> push of a server-side unsubscribe.</summary>
    public static byte[] UnsubscribedPush(string channel, string reason)
    {
        return Encode((channel, reason), static (w, s) =>
        {
            w.WriteString("type"u8, "unsubscribed"u8);
            w.WriteString("channel"u8, s.channel);
            w.WriteString("reason"u8, s.reason);
        });
    }

    /// <summary>
    /// An event stream's <c>subscribed</c> event (docs/protocol.md, Server-Sent Events): what follows in
    /// <paramref name="channel"/> comes after <paramref name="position"/>.
    /// </summary>
    public static byte[] StreamSubscribed(string channel, StreamPosition position, bool recovered)
    {
        return Encode((channel, position, recovered), static (w, s) =>
        {
            w.WriteString("type"u8, "subscribed"u8);
            w.WriteString("channel"u8, s.channel);
            w.WriteString("epoch"u8, s.position.Epoch);
            w.WriteNumber("offset"u8, s.position.Offset);
            w.WriteBoolean("recovered"u8, s.recovered);
        });
    }

    /// <summary>An event stream's <c>reset</c> event: history no longer holds the gap; the channel goes on from <paramref name="position"/>.</summary>
    public static byte[] StreamReset(string channel, StreamPosition position)
    {
        return Encode((channel, position), static (w, s) =>
        {
            w.WriteString("type"u8, "reset"u8);
            w.WriteString("channel"u8, s.channel);
            w.WriteString("epoch"u8, s.position.Epoch);
            w.WriteNumber("offset"u8, s.position.Offset);
        });
    }

    /// <summary>Pushes as one frame, separated by <c>\n</c> (the contract's framing), copied once.</summary>
    public static byte[] Join(IReadOnlyList<byte[]> pushes)
    {
        var frame = new byte[pushes.Sum(p => p.Length) + Math.Max(0, pushes.Count - 1)];
        var at = 0;
        for (var i = 0; i < pushes.Count; i++)
        {
            if (i > 0)
            {
                frame[at++] = (byte)'\n';
            }

            pushes[i].CopyTo(frame, at);
            at += pushes[i].Length;
        }

        return frame;
    }

    /// <summary>A <c>join</c> or <c>leave</c> push.</summary>
    public static byte[] JoinLeavePush(bool join, string channel, string client, string user)
    {
        return Encode((join, channel, client, user), static (w, s) =>
        {
            w.WriteString("type"u8, s.join ? "join"u8 : "leave"u8);
            w.WriteString("channel"u8, s.channel);
            w.WriteString("client"u8, s.client);
            w.WriteString("user"u8, s.user);
        });
    }

    /// <summary>Writes <c>"messages":[{"offset":N,"data":…},…]</c> with each data value as its raw bytes.</summary>
    public static void WriteMessages(Utf8JsonWriter writer, IReadOnlyList<Publication> publications)
    {
        writer.WriteStartArray("messages"u8);
        foreach (var publication in publications)
        {
            writer.WriteStartObject();
            writer.WriteNumber("offset"u8, publication.Offset);
            writer.WritePropertyName("data"u8);
            writer.WriteRawValue(publication.Data.Span, skipInputValidation: true);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }

    /// <summary>Writes <c>"clients":[{"client":…,"user":…},…]</c>, the presence result of the command and of the REST API.</summary>
    public static void WriteClients(Utf8JsonWriter writer, IReadOnlyList<PresenceEntry> entries)
    {
        writer.WriteStartArray("clients"u8);
        foreach (var entry in entries)
        {
            writer.WriteStartObject();
            writer.WriteString("client"u8, entry.Client);
            writer.WriteString("user"u8, entry.User);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }

    private static byte[] Write<TState>(long id, Action<Utf8JsonWriter, TState> writeResult, TState state)
    {
        return Encode((id, writeResult, state), static (w, s) =>
        {
            w.WriteNumber("id"u8, s.id);
            w.WriteStartObject("result"u8);
            s.writeResult(w, s.state);
            w.WriteEndObject();
        });
    }

    private static byte[] Encode<TState>(TState state, Action<Utf8JsonWriter, TState> writeBody)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writeBody(writer, state);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
