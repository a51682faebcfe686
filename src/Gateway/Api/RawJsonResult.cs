using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace PushService.Gateway.Api;

/// <summary>A 200 JSON answer written with <see cref="Utf8JsonWriter"/>, so raw <c>data</c> bytes go out as they are.</summary>
internal sealed class RawJsonResult : IResult
{
    private readonly byte[] _body;

    private RawJsonResult(byte[] body) => _body = body;

    public static RawJsonResult Write<TState>(TState state, Action<Utf8JsonWriter, TState> writeBody)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true }))
        {
            writer.WriteStartObject();
            writeBody(writer, state);
            writer.WriteEndObject();
        }

        return new RawJsonResult(buffer.WrittenSpan.ToArray());
    }

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.StatusCode = StatusCodes.Status200OK;
        httpContext.Response.ContentType = "application/json; charset=utf-8";
        httpContext.Response.ContentLength = _body.Length;
        await httpContext.Response.Body.WriteAsync(_body);
    }
}
