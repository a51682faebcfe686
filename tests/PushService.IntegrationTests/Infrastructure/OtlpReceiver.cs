using System.Collections.Concurrent;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>
/// What an OpenTelemetry collector is to the nodes, on a loopback port: OTLP over HTTP with protobuf bodies
/// (<c>OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf</c>). It decodes the spans of <c>/v1/traces</c> (the fields this suite
/// reads: ids, name, kind, attributes, the resource's <c>service.instance.id</c>) and counts the metrics and logs posts.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<Span> _spans = new();
    private int _metricsPosts;
    private int _logsPosts;

    private OtlpReceiver(WebApplication app) => _app = app;

    public sealed record Span(string Node, string Scope, string TraceId, string SpanId, string ParentSpanId, string Name, int Kind,
        IReadOnlyDictionary<string, string> Attributes);

    public Uri Endpoint { get; private set; } = null!;

    public IReadOnlyList<Span> Spans => [.. _spans];

    public int MetricsPosts => Volatile.Read(ref _metricsPosts);

    public int LogsPosts => Volatile.Read(ref _logsPosts);

    public static async Task<OtlpReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var receiver = new OtlpReceiver(app);
        app.MapPost("/v1/traces", async context =>
        {
            foreach (var span in ExportTraceServiceRequest(await BodyAsync(context)))
            {
                receiver._spans.Enqueue(span);
            }

            await EmptyReplyAsync(context);
        });
        app.MapPost("/v1/metrics", async context =>
        {
            await BodyAsync(context);
            Interlocked.Increment(ref receiver._metricsPosts);
            await EmptyReplyAsync(context);
        });
        app.MapPost("/v1/logs", async context =>
        {
            await BodyAsync(context);
            Interlocked.Increment(ref receiver._logsPosts);
            await EmptyReplyAsync(context);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        receiver.Endpoint = new Uri(address);
        return receiver;
    }

    private static async Task<byte[]> BodyAsync(HttpContext context)
    {
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer);
        return buffer.ToArray();
    }

    private static Task EmptyReplyAsync(HttpContext context)
    {
        // An empty Export*ServiceResponse: every item accepted.
        context.Response.ContentType = "application/x-protobuf";
        return Task.CompletedTask;
    }

    // opentelemetry/proto/collector/trace/v1: ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
    private static IEnumerable<Span> ExportTraceServiceRequest(byte[] body)
    {
        foreach (var (field, value) in Fields(body))
        {
            if (field == 1)
            {
                foreach (var span in ResourceSpans(value))
                {
                    yield return span;
                }
            }
        }
    }

    // ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
    private static IEnumerable<Span> ResourceSpans(byte[] message)
    {
        var node = "";
        var scopes = new List<byte[]>();
        foreach (var (field, value) in Fields(message))
        {
            if (field == 1)
            {
                // Resource { repeated KeyValue attributes = 1; }
                var attributes = Fields(value).Where(f => f.Field == 1).Select(f => KeyValue(f.Value)).ToDictionary(kv => kv.Key, kv => kv.Value);
                node = attributes.GetValueOrDefault("service.instance.id", "");
            }
            else if (field == 2)
            {
                scopes.Add(value);
            }
        }

        foreach (var scope in scopes)
        {
            // ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
            var scopeName = "";
            foreach (var (field, value) in Fields(scope))
            {
                if (field == 1)
                {
                    scopeName = Fields(value).Where(f => f.Field == 1).Select(f => Encoding.UTF8.GetString(f.Value)).FirstOrDefault() ?? "";
                }
                else if (field == 2)
                {
                    yield return SpanOf(node, scopeName, value);
                }
            }
        }
    }

    // Span { bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5; SpanKind kind = 6; repeated KeyValue attributes = 9; }
    private static Span SpanOf(string node, string scope, byte[] message)
    {
        string traceId = "", spanId = "", parent = "", name = "";
        var kind = 0;
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (field, value) in Fields(message))
        {
            switch (field)
            {
                case 1: traceId = Convert.ToHexStringLower(value); break;
                case 2: spanId = Convert.ToHexStringLower(value); break;
                case 4: parent = Convert.ToHexStringLower(value); break;
                case 5: name = Encoding.UTF8.GetString(value); break;
                case 6: kind = (int)Varint(value, 0, out _); break;
                case 9:
                    var (key, text) = KeyValue(value);
                    attributes[key] = text;
                    break;
            }
        }

        return new Span(node, scope, traceId, spanId, parent, name, kind, attributes);
    }

    // KeyValue { string key = 1; AnyValue value = 2; }, AnyValue { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; }
    private static (string Key, string Value) KeyValue(byte[] message)
    {
        var key = "";
        var text = "";
        foreach (var (field, value) in Fields(message))
        {
            if (field == 1)
            {
                key = Encoding.UTF8.GetString(value);
            }
            else if (field == 2)
            {
                foreach (var (kind, any) in Fields(value))
                {
                    text = kind switch
                    {
                        1 => Encoding.UTF8.GetString(any),
                        2 or 3 => Varint(any, 0, out _).ToString(System.Globalization.CultureInfo.InvariantCulture),
                        4 => BitConverter.ToDouble(any).ToString(System.Globalization.CultureInfo.InvariantCulture),
                        _ => text,
                    };
                }
            }
        }

        return (key, text);
    }

    /// <summary>
    /// A protobuf message's fields in order: length-delimited ones as their bytes, varints as their encoding (read them with
    /// <see cref="Varint"/>), fixed-width ones as their 8 or 4 bytes.
    /// </summary>
    private static List<(int Field, byte[] Value)> Fields(byte[] message)
    {
        var fields = new List<(int, byte[])>();
        var at = 0;
        while (at < message.Length)
        {
            var tag = Varint(message, at, out at);
            var field = (int)(tag >> 3);
            switch ((int)(tag & 7))
            {
                case 0:
                    var start = at;
                    Varint(message, at, out at);
                    fields.Add((field, message[start..at]));
                    break;
                case 1:
                    fields.Add((field, message[at..(at + 8)]));
                    at += 8;
                    break;
                case 2:
                    var length = (int)Varint(message, at, out at);
                    fields.Add((field, message[at..(at + length)]));
                    at += length;
                    break;
                case 5:
                    fields.Add((field, message[at..(at + 4)]));
                    at += 4;
                    break;
                default:
                    throw new InvalidDataException($"wire type {tag & 7} at {at}");
            }
        }

        return fields;
    }

    private static ulong Varint(byte[] data, int at, out int next)
    {
        ulong value = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = data[at++];
            value |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0)
            {
                next = at;
                return value;
            }
        }
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
