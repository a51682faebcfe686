using System.Collections;
using System.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>
/// A gateway hosted in the test process on Kestrel (a real loopback port) and a real Redis, its tracer provider exporting
/// to an in-memory list: what a collector would receive from the node.
/// </summary>
/// <remarks>
/// Activity sources are process-wide, so every tracer provider in the process sees every node's spans: a span's
/// <c>pushservice.node.id</c> says which node recorded it.
/// </remarks>
public sealed class TracedGateway : IAsyncDisposable
{
    private readonly WebApplicationFactory<Program> _factory;

    private TracedGateway(WebApplicationFactory<Program> factory, Uri baseAddress, SpanCollection spans)
    {
        _factory = factory;
        BaseAddress = baseAddress;
        Spans = spans;
        Http = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    public Uri BaseAddress { get; }

    public Uri WebSocketUri => new($"ws://{BaseAddress.Authority}/ws");

    public HttpClient Http { get; }

    public SpanCollection Spans { get; }

    public static TracedGateway Start(string nodeId, string redis, IDictionary<string, string?>? settings = null)
    {
        var spans = new SpanCollection();
        var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(builder =>
        {
            builder.UseEnvironment("Production");
            builder.UseSetting("Urls", "http://127.0.0.1:0");
            builder.UseSetting("Logging:LogLevel:Default", "Warning");
            builder.UseSetting("PushService:NodeId", nodeId);
            builder.UseSetting("PushService:Redis:Configuration", redis);
            builder.UseSetting("PushService:Drain:Delay", "00:00:00");
            builder.UseSetting("PushService:Drain:Window", "00:00:00");
            foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            {
                builder.UseSetting(key, value);
            }

            // As a collector would be reached with OTEL_EXPORTER_OTLP_ENDPOINT: a tracer provider with the gateway's own
            // sources, instrumentation and sampler, exporting here.
            builder.ConfigureTestServices(services => services.AddOpenTelemetry().WithTracing(tracing => tracing.AddInMemoryExporter(spans)));
        });
        factory.UseKestrel(0);
        factory.StartServer();
        var addresses = factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        var address = new Uri(addresses.First(a => a.StartsWith("http", StringComparison.Ordinal)).Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
        return new TracedGateway(factory, address, spans);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _factory.DisposeAsync();
    }

    /// <summary>The exported spans; the exporter adds from the threads that end them while the test reads.</summary>
    public sealed class SpanCollection : ICollection<Activity>
    {
        private readonly List<Activity> _spans = [];

        public int Count
        {
            get
            {
                lock (_spans)
                {
                    return _spans.Count;
                }
            }
        }

        public bool IsReadOnly => false;

        public List<Activity> Snapshot()
        {
            lock (_spans)
            {
                return [.. _spans];
            }
        }

        public void Add(Activity item)
        {
            lock (_spans)
            {
                _spans.Add(item);
            }
        }

        public void Clear()
        {
            lock (_spans)
            {
                _spans.Clear();
            }
        }

        public bool Contains(Activity item)
        {
            lock (_spans)
            {
                return _spans.Contains(item);
            }
        }

        public void CopyTo(Activity[] array, int arrayIndex) => Snapshot().CopyTo(array, arrayIndex);

        public bool Remove(Activity item)
        {
            lock (_spans)
            {
                return _spans.Remove(item);
            }
        }

        public IEnumerator<Activity> GetEnumerator() => Snapshot().GetEnumerator();

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
