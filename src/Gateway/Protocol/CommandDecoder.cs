using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using PushService.Broker;

namespace PushService.Gateway.Protocol;

/// <summary>
/// Decodes one client frame into a <see cref="Command"/>. A frame that is not one JSON object with a known op
/// (and an id where the op needs one) is fatal for the connection (4000); a malformed field of an otherwise
/// good command is reported on the command, so the client gets a <c>bad_request</c> reply instead.
/// </summary>
public static class CommandDecoder
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 64, CommentHandling = JsonCommentHandling.Disallow };

    /// <summary>Decodes <paramref name="frame"/>. Never throws for any input.</summary>
    /// <returns>The command, or null with <paramref name="fatalError"/> set.</returns>
    public static Command? Decode(ReadOnlySpan<byte> frame, out string? fatalError)
    {
        if (!Utf8.IsValid(frame))
        {
            fatalError = "The frame is not valid UTF-8.";
            return null;
        }

        try
        {
            return DecodeJson(frame, out fatalError);
        }
        catch (JsonException ex)
        {
            fatalError = $"The frame is not valid JSON: {ex.Message}";
            return null;
        }
        catch (InvalidOperationException ex)
        {
            fatalError = $"The frame is not valid JSON: {ex.Message}";
            return null;
        }
    }

    private static Command? DecodeJson(ReadOnlySpan<byte> frame, out string? fatalError)
    {
        var reader = new Utf8JsonReader(frame, isFinalBlock: true, new JsonReaderState(ReaderOptions));
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            fatalError = "A command is one JSON object.";
            return null;
        }

        var command = new Command();
        string? op = null;
        var hasId = false;
        string? idError = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.ValueSpan;
            var escaped = reader.ValueIsEscaped;
            reader.Read();
            if (escaped)
            {
                // Property names are plain ASCII in the contract; an escaped one is unknown and skipped.
                reader.Skip();
                continue;
            }

            if (name.SequenceEqual("op"u8))
            {
                op = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                reader.Skip();
            }
            else if (name.SequenceEqual("id"u8))
            {
                hasId = true;
                if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out var id) || id <= 0)
                {
                    idError = "'id' must be a positive integer.";
                }
                else
                {
                    command.Id = id;
                }

                reader.Skip();
            }
            else if (name.SequenceEqual("channel"u8))
            {
                command.Channel = ReadString(ref reader, "channel", command);
            }
            else if (name.SequenceEqual("token"u8))
            {
                command.Token = ReadString(ref reader, "token", command);
            }
            else if (name.SequenceEqual("name"u8))
            {
                command.Name = ReadString(ref reader, "name", command);
            }
            else if (name.SequenceEqual("version"u8))
            {
                command.Version = ReadString(ref reader, "version", command);
            }
            else if (name.SequenceEqual("since"u8))
            {
                command.Since = ReadSince(ref reader, command);
            }
            else if (name.SequenceEqual("limit"u8))
            {
                if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var limit) && limit >= 0)
                {
                    command.Limit = limit;
                }
                else if (reader.TokenType != JsonTokenType.Null)
                {
                    command.FieldError ??= "'limit' must be a non-negative integer.";
                }

                reader.Skip();
            }
            else if (name.SequenceEqual("data"u8))
            {
                command.Data = JsonData.ReadRawValue(ref reader, frame);
            }
            else
            {
                // Unknown fields are ignored so newer clients can talk to older nodes.
                reader.Skip();
            }
        }

        if (reader.TokenType != JsonTokenType.EndObject)
        {
            fatalError = "A command is one JSON object.";
            return null;
        }

        // Only whitespace may follow the object: one frame holds exactly one command.
        if (reader.Read())
        {
            fatalError = "A frame holds exactly one JSON object.";
            return null;
        }

        command.Op = ParseOp(op);
        if (command.Op == CommandOp.Unknown)
        {
            fatalError = op is null ? "The command has no string 'op'." : $"Unknown op '{Truncate(op)}'.";
            return null;
        }

        if (command.Op != CommandOp.Pong)
        {
            if (!hasId)
            {
                fatalError = $"The '{op}' command needs an 'id'.";
                return null;
            }

            if (idError is not null)
            {
                fatalError = idError;
                return null;
            }
        }

        fatalError = null;
        return command;
    }

    private static string? ReadString(ref Utf8JsonReader reader, string field, Command command)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.String:
                return reader.GetString();
            case JsonTokenType.Null:
                return null;
            default:
                command.FieldError ??= $"'{field}' must be a string.";
                reader.Skip();
                return null;
        }
    }

    private static StreamPosition? ReadSince(ref Utf8JsonReader reader, Command command)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            command.FieldError ??= "'since' must be an object {\"epoch\":\"…\",\"offset\":N}.";
            reader.Skip();
            return null;
        }

        string? epoch = null;
        long? offset = null;
        var bad = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isEpoch = reader.ValueTextEquals("epoch"u8);
            var isOffset = reader.ValueTextEquals("offset"u8);
            reader.Read();
            if (isEpoch && reader.TokenType == JsonTokenType.String)
            {
                epoch = reader.GetString();
            }
            else if (isOffset && reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var o) && o >= 0)
            {
                offset = o;
            }
            else if (isEpoch || isOffset)
            {
                bad = true;
            }

            reader.Skip();
        }

        if (bad || epoch is null || offset is null)
        {
            command.FieldError ??= "'since' must be an object {\"epoch\":\"…\",\"offset\":N} with a string epoch and a non-negative offset.";
            return null;
        }

        return new StreamPosition(offset.Value, epoch);
    }

    private static CommandOp ParseOp(string? op) => op switch
    {
        "connect" => CommandOp.Connect,
        "subscribe" => CommandOp.Subscribe,
        "unsubscribe" => CommandOp.Unsubscribe,
        "publish" => CommandOp.Publish,
        "history" => CommandOp.History,
        "presence" => CommandOp.Presence,
        "ping" => CommandOp.Ping,
        "pong" => CommandOp.Pong,
        "refresh" => CommandOp.Refresh,
        _ => CommandOp.Unknown,
    };

    private static string Truncate(string value)
    {
        var shown = value.Length > 32 ? value[..32] + "…" : value;
        var builder = new StringBuilder(shown.Length);
        foreach (var c in shown)
        {
            builder.Append(char.IsControl(c) ? '?' : c);
        }

        return builder.ToString();
    }
}
