using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using PushService.Gateway.Transport.Sockets;

namespace PushService.Gateway.Transport;

/// <summary>
/// Server-Sent Events on an HTTP response (<c>text/event-stream</c>), for the connection's writer as the WebSocket's
/// framing is (<see cref="IPushTransport"/>): each push the writer hands over (the same bytes every WebSocket gets) becomes
/// one event whose <c>data</c> is that JSON object. A <c>message</c> push, and the <c>subscribed</c> and <c>reset</c>
/// events a stream starts a channel with, move the stream's position in their channel, and their event carries an id
/// holding every channel's position (<see cref="SseEventId"/>); other pushes keep the last id. A push beginning with
/// <c>:</c> is written as a comment (the heartbeat). Pushes never hold a raw line break (the contract's framing), so
/// each is one <c>data:</c> line; a push the writer got as several objects on separate lines (a stream's subscribe
/// result) becomes one event each.
/// </summary>
internal sealed class SseTransport : IPushTransport
{
    private static ReadOnlySpan<byte> IdField => "id: "u8;
    private static ReadOnlySpan<byte> DataField => "data: "u8;

    private readonly PipeWriter _output;
    private readonly Action _abort;
    private readonly Action<string> _unsubscribed;
    private readonly List<string> _order = [];
    private readonly Dictionary<string, (string Epoch, long Offset)> _positions = new(StringComparer.Ordinal);
    private int _ended;

    /// <summary>
    /// Events on <paramref name="output"/>; <paramref name="abort"/> ends the response at once, and
    /// <paramref name="unsubscribed"/> is told of a channel the server ended (the stream then ends so that the client
    /// resumes from its last id, which still holds where that channel stood).
    /// </summary>
    public SseTransport(PipeWriter output, Action abort, Action<string> unsubscribed)
    {
        _output = output;
        _abort = abort;
        _unsubscribed = unsubscribed;
    }

    /// <summary>The id of the last event that carried one: where the stream stands in every channel.</summary>
    public string? LastEventId { get; private set; }

    public bool HasPendingControl => false;

    public void WritePendingControl()
    {
        // An event stream has no frames of its own to owe the client.
    }

    public void WriteMessage(ReadOnlySpan<ReadOnlyMemory<byte>> pushes, long payloadBytes)
    {
        foreach (var push in pushes)
        {
            var rest = push.Span;
            while (rest.Length > 0)
            {
                var end = rest.IndexOf((byte)'\n');
                var one = end < 0 ? rest : rest[..end];
                rest = end < 0 ? [] : rest[(end + 1)..];
                if (one.Length > 0)
                {
                    WriteEvent(one);
                }
            }
        }
    }

    public void WriteClose(int code, string reason, ReadOnlySpan<byte> disconnectPush)
    {
        // The disconnect push says why and whether to come back; the response then ends, and EventSource reconnects with
        // its last id (after the retry the stream began with) unless told not to by the application.
        if (disconnectPush.Length > 0)
        {
            WriteData(disconnectPush);
        }
    }

    public bool TryFlushInBatch(SendBatch batch, IBatchedFlushCompletion completion) => false;

    public ValueTask<FlushResult> FlushAsync() =>
        Volatile.Read(ref _ended) != 0 ? ValueTask.FromResult(new FlushResult(isCanceled: false, isCompleted: true)) : _output.FlushAsync();

    /// <summary>Aborts the response, unless it already ended: a request that has returned may not be touched again.</summary>
    public void Abort()
    {
        if (Interlocked.Exchange(ref _ended, 1) == 0)
        {
            _abort();
        }
    }

    /// <summary>
    /// The response is over (the client went, or the request is returning): nothing more is written to it, and it is not
    /// aborted after. A flush already under way on a send loop then ends as a closed connection's does.
    /// </summary>
    public void End() => Volatile.Write(ref _ended, 1);

    /// <summary>
    /// Starts a resumed stream at the positions its client came back with, before anything is written: until a channel's
    /// own subscribe is written, every id still holds where the client stood in it, so a stream that breaks again at
    /// once loses nothing.
    /// </summary>
    public void Resume(IEnumerable<KeyValuePair<string, (string Epoch, long Offset)>> positions)
    {
        foreach (var (channel, position) in positions)
        {
            if (_positions.TryAdd(channel, position))
            {
                _order.Add(channel);
            }
        }
    }

    /// <summary>The first lines of a stream: how long a browser waits before it reconnects.</summary>
    public void WriteRetry(TimeSpan retry)
    {
        Write("retry: "u8);
        Write(Encoding.ASCII.GetBytes(((long)retry.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Write("\n\n"u8);
    }

    private void WriteEvent(ReadOnlySpan<byte> push)
    {
        if (push[0] == (byte)':')
        {
            Write(push);
            Write("\n\n"u8);
            return;
        }

        var (type, channel, epoch, offset) = Read(push);
        switch (type)
        {
            case "message" when channel is not null && offset >= 0 && _positions.TryGetValue(channel, out var at):
                Move(channel, at.Epoch, offset);
                break;
            case "subscribed" or "reset" when channel is not null && epoch is not null && offset >= 0:
                Move(channel, epoch, offset);
                break;
            case "unsubscribed" when channel is not null:
                _unsubscribed(channel);
                break;
        }

        WriteData(push);
    }

    private void Move(string channel, string epoch, long offset)
    {
        if (!_positions.ContainsKey(channel))
        {
            _order.Add(channel);
        }

        _positions[channel] = (epoch, offset);
        LastEventId = SseEventId.Format(_order.Select(c => new KeyValuePair<string, (string, long)>(c, _positions[c])));
        Write(IdField);
        Write(Encoding.UTF8.GetBytes(LastEventId));
        Write("\n"u8);
    }

    private void WriteData(ReadOnlySpan<byte> json)
    {
        Write(DataField);
        Write(json);
        Write("\n\n"u8);
    }

    private void Write(ReadOnlySpan<byte> bytes)
    {
        if (Volatile.Read(ref _ended) != 0)
        {
            throw new IOException("The event stream has ended.");
        }

        try
        {
            _output.Write(bytes);
        }
        catch (ArgumentOutOfRangeException ex)
        {
            // The response completed between the check above and this write (the request ended on another thread): its
            // writer hands out no more memory. That is the end of the stream, as a closed socket is for a WebSocket.
            End();
            throw new IOException("The event stream has ended.", ex);
        }
    }

    /// <summary>
    /// The fields an event id needs, read from the head of a push: <c>type</c>, <c>channel</c>, <c>epoch</c> and
    /// <c>offset</c> come before <c>data</c> in every push the gateway writes, so reading stops there.
    /// </summary>
    internal static (string? Type, string? Channel, string? Epoch, long Offset) Read(ReadOnlySpan<byte> push)
    {
        string? type = null, channel = null, epoch = null;
        long offset = -1;
        var reader = new Utf8JsonReader(push);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return (null, null, null, -1);
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("data"u8) || reader.CurrentDepth != 1)
                {
                    break;
                }

                var name = reader.ValueTextEquals("type"u8) ? 1 : reader.ValueTextEquals("channel"u8) ? 2 : reader.ValueTextEquals("epoch"u8) ? 3
                    : reader.ValueTextEquals("offset"u8) ? 4 : 0;
                if (!reader.Read())
                {
                    break;
                }

                switch (name)
                {
                    case 1 when reader.TokenType == JsonTokenType.String:
                        type = reader.GetString();
                        break;
                    case 2 when reader.TokenType == JsonTokenType.String:
                        channel = reader.GetString();
                        break;
                    case 3 when reader.TokenType == JsonTokenType.String:
                        epoch = reader.GetString();
                        break;
                    case 4 when reader.TokenType == JsonTokenType.Number:
                        offset = reader.GetInt64();
                        break;
                    default:
                        reader.Skip();
                        break;
                }
            }
        }
        catch (JsonException)
        {
            // Only the gateway's own pushes come here; one that cannot be read still goes out, without an id.
        }

        return (type, channel, epoch, offset);
    }
}
