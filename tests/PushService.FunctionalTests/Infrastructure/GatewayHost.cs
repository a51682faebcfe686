using System.Net.Http.Json;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using PushService.Testing;

namespace PushService.FunctionalTests.Infrastructure;

/// <summary>A real gateway on Kestrel, on a free loopback port, configured through the same keys operators use.</summary>
public sealed class GatewayHost : IAsyncDisposable
{
    private readonly WebApplicationFactory<Program> _factory;

    private readonly string? _pinnedCertificate;

    private GatewayHost(WebApplicationFactory<Program> factory, Uri baseAddress, string? pinnedCertificate)
    {
        _factory = factory;
        BaseAddress = baseAddress;
        _pinnedCertificate = pinnedCertificate;
        Http = IsTls
            ? new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, certificate, _, errors) => IsTrusted(certificate, errors) })
            {
                BaseAddress = baseAddress,
                Timeout = TimeSpan.FromSeconds(30),
            }
            : new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>A host on https serves the test's own self-signed certificate: that one is trusted, by its hash.</summary>
    private bool IsTrusted(X509Certificate? certificate, SslPolicyErrors errors) =>
        errors == SslPolicyErrors.None || (certificate is not null && certificate.GetCertHashString() == _pinnedCertificate);

    public Uri BaseAddress { get; }

    private bool IsTls => BaseAddress.Scheme == Uri.UriSchemeHttps;

    public Uri WebSocketUri => new($"{(IsTls ? "wss" : "ws")}://{BaseAddress.Authority}/ws");

    public HttpClient Http { get; }

    public IServiceProvider Services => _factory.Services;

    public static GatewayHost Start(IDictionary<string, string?>? settings = null)
    {
        var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(builder =>
        {
            // As operators run it: the factory's default, Development, would add appsettings.Development.json (what
            // `dotnet run` gives the samples), and the tests configure what they need themselves.
            builder.UseEnvironment("Production");
            builder.UseSetting("Urls", "http://127.0.0.1:0");
            builder.UseSetting("Logging:LogLevel:Default", "Warning");

            // A host disposed with clients still open stops at once; the drain tests set their own delay and window.
            builder.UseSetting("PushService:Drain:Delay", "00:00:00");
            builder.UseSetting("PushService:Drain:Window", "00:00:00");
            foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            {
                builder.UseSetting(key, value);
            }
        });
        factory.UseKestrel(0);
        factory.StartServer();
        var addresses = factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        var address = new Uri(addresses.First(a => a.StartsWith("http", StringComparison.Ordinal)).Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
        var certificatePath = settings?.TryGetValue("Kestrel:Certificates:Default:Path", out var path) == true ? path : null;
        string? pinned = null;
        if (certificatePath is not null)
        {
            using var certificate = X509CertificateLoader.LoadPkcs12FromFile(certificatePath, settings!["Kestrel:Certificates:Default:Password"]);
            pinned = certificate.GetCertHashString();
        }

        return new GatewayHost(factory, address, pinned);
    }

    public async Task<TestClient> ConnectAsync(bool connect = true, Action<System.Net.WebSockets.ClientWebSocketOptions>? configure = null, int? receiveBufferBytes = null)
    {
        var client = await TestClient.OpenAsync(WebSocketUri, options =>
        {
            if (IsTls)
            {
                options.RemoteCertificateValidationCallback = (_, certificate, _, errors) => IsTrusted(certificate, errors);
            }

            configure?.Invoke(options);
        }, receiveBufferBytes);
        if (connect)
        {
            var reply = await client.RequestAsync(new { op = "connect" });
            Assert.True(reply.TryGetProperty("result", out _), reply.ToString());
        }

        return client;
    }

    /// <summary>Publishes through the REST API and returns the answer's body.</summary>
    public async Task<JsonElement> PublishAsync(string channel, string dataJson, string? idempotencyKey = null)
    {
        using var response = await PostPublishAsync(channel, dataJson, idempotencyKey);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public Task<HttpResponseMessage> PostPublishAsync(string channel, string dataJson, string? idempotencyKey = null)
    {
        var key = idempotencyKey is null ? "" : $",\"idempotencyKey\":{JsonSerializer.Serialize(idempotencyKey)}";
        var content = new StringContent($"{{\"data\":{dataJson}{key}}}", Encoding.UTF8, "application/json");
        return Http.PostAsync($"/api/v1/channels/{Uri.EscapeDataString(channel)}/messages", content);
    }

    public async Task<JsonElement> GetJsonAsync(string path)
    {
        using var response = await Http.GetAsync(path);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>
    /// The current value of one of this host's observable counters, read from its own meter. Not from <c>/metrics</c>:
    /// OpenTelemetry's meter provider listens to every meter of its name in the process, so with other hosts running
    /// in parallel the exporter's series for an observed counter is whichever host's callback ran last.
    /// </summary>
    public long ObservedCounter(string name)
    {
        var factory = Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        long total = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter.Scope, factory) && instrument.Name == name)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => total += value);
        listener.Start();
        listener.RecordObservableInstruments();
        return total;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _factory.DisposeAsync();
    }
}
