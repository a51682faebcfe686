using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using PushService.FunctionalTests.Infrastructure;

namespace PushService.FunctionalTests;

/// <summary>
/// TLS served by Kestrel itself (docs/security.md), on both transports under it: the encrypted bytes go through the
/// lean transport's reader and writer (or Kestrel's pipes), the WebSocket upgrade through the HTTP pipeline, and
/// HTTP/2's streams over one connection.
/// </summary>
public sealed class TlsTests : IDisposable
{
    private readonly string _certificatePath = Path.Combine(Path.GetTempPath(), $"pushservice-tls-{Guid.NewGuid():N}.pfx");

    public TlsTests()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        File.WriteAllBytes(_certificatePath, certificate.Export(X509ContentType.Pfx, "test"));
    }

    public void Dispose() => File.Delete(_certificatePath);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task OverTls_ASubscriberGetsWhatTheRestApiPublishes_IncludingALargeMessage(bool lean)
    {
        await using var host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["Urls"] = "https://127.0.0.1:0",
            ["Kestrel:Certificates:Default:Path"] = _certificatePath,
            ["Kestrel:Certificates:Default:Password"] = "test",
            ["PushService:Server:BypassKestrelTransport"] = lean ? "true" : "false",
        });
        Assert.Equal("https", host.BaseAddress.Scheme);

        await using var client = await host.ConnectAsync();
        await client.ResultAsync(new { op = "subscribe", channel = "secure" });
        await host.PublishAsync("secure", "{\"n\":1}");
        // Larger than one TLS record and one transport buffer, both ways.
        var large = new string('x', 40_000);
        await host.PublishAsync("secure", $"{{\"text\":\"{large}\"}}");

        var messages = await client.MessagesAsync("secure", 2);
        Assert.Equal(1, messages[0].GetProperty("data").GetProperty("n").GetInt32());
        Assert.Equal(large, messages[1].GetProperty("data").GetProperty("text").GetString());

        // HTTP/2 (negotiated by ALPN) multiplexes streams over the same transport: several requests at once.
        var requests = Enumerable.Range(0, 8).Select(async _ =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/healthz") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
            using var response = await host.Http.SendAsync(request);
            Assert.Equal(HttpVersion.Version20, response.Version);
            return await response.Content.ReadAsStringAsync();
        });
        Assert.All(await Task.WhenAll(requests), body => Assert.Equal("ok", body));
    }
}
