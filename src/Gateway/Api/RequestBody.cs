using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using System.Text.Unicode;
using Microsoft.AspNetCore.Http;
using PushService.Gateway.Protocol;

namespace PushService.Gateway.Api;

/// <summary>A publish or broadcast body: the raw <c>data</c> value, an optional idempotency key, and (broadcast) channels.</summary>
internal sealed class PublishBody
{
    public byte[]? Data { get; set; }

    public string? IdempotencyKey { get; set; }

    public List<string>? Channels { get; set; }
}

/// <summary>Reads REST bodies within the size limit and parses them without ever re-serializing <c>data</c>.</summary>
internal static class RequestBody
{
    public const int MaxIdempotencyKeyLength = 256;

    /// <summary>Reads the whole body, or null when it is larger than <paramref name="limit"/>.</summary>
    public static async Task<byte[]?> ReadAsync(HttpRequest request, int limit, CancellationToken cancellationToken)
    {
        if (request.ContentLength > limit)
        {
            return null;
        }

        var reader = request.BodyReader;
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken);
            if (result.Buffer.Length > limit)
            {
                reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                return null;
            }

            if (result.IsCompleted)
            {
                var body = result.Buffer.ToArray();
                reader.AdvanceTo(result.Buffer.End);
                return body;
            }

            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    /// <summary>Parses a publish body, or says what is wrong with it.</summary>
    public static PublishBody? Parse(byte[] body, bool broadcast, out string? error)
    {
        if (!Utf8.IsValid(body))
        {
            error = "The body is not valid UTF-8.";
            return null;
        }

        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 64 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                error = "The body must be a JSON object.";
                return null;
            }

            var parsed = new PublishBody();
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("data"u8))
                {
                    reader.Read();
                    parsed.Data = JsonData.ReadRawValue(ref reader, body);
                }
                else if (reader.ValueTextEquals("idempotencyKey"u8))
                {
                    reader.Read();
                    if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.Null))
                    {
                        error = "'idempotencyKey' must be a string.";
                        return null;
                    }

                    parsed.IdempotencyKey = reader.GetString();
                }
                else if (broadcast && reader.ValueTextEquals("channels"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.StartArray)
                    {
                        error = "'channels' must be an array of channel names.";
                        return null;
                    }

                    parsed.Channels = [];
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        if (reader.TokenType != JsonTokenType.String)
                        {
                            error = "'channels' must be an array of channel names.";
                            return null;
                        }

                        parsed.Channels.Add(reader.GetString()!);
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            if (reader.Read())
            {
                error = "The body must be one JSON object.";
                return null;
            }

            if (parsed.Data is null)
            {
                error = "'data' is required.";
                return null;
            }

            if (parsed.IdempotencyKey is { } key && (key.Length is 0 or > MaxIdempotencyKeyLength || key.Any(char.IsControl)))
            {
                error = $"'idempotencyKey' must be 1 to {MaxIdempotencyKeyLength} characters without control characters.";
                return null;
            }

            error = null;
            return parsed;
        }
        catch (JsonException ex)
        {
            error = $"The body is not valid JSON: {ex.Message}";
            return null;
        }
    }
}
