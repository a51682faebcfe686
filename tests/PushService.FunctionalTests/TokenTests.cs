using System.Net.WebSockets;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;
using PushService.FunctionalTests.Infrastructure;
using PushService.Testing;

namespace PushService.FunctionalTests;

/// <summary>Connection and subscription tokens: algorithms and keys, rotation, refresh and expiry, server-side subscriptions.</summary>
public sealed class TokenTests
{
    [Fact]
    public async Task Rs256_WithAConfiguredPublicKey_IsAccepted_AndOtherKeysAreNot()
    {
        using var rsa = RSA.Create(2048);
        using var other = RSA.Create(2048);
        await using var host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:Auth:Jwt:PublicKeys:0"] = rsa.ExportSubjectPublicKeyInfoPem(),
        });
        await using var good = await host.ConnectAsync(connect: false);
        await good.ResultAsync(new { op = "connect", token = Tokens.Rs256(rsa, "k1", "alice") });
        await using var bad = await host.ConnectAsync(connect: false);
        Assert.Equal("unauthorized", await bad.ErrorCodeAsync(new { op = "connect", token = Tokens.Rs256(other, "k1", "alice") }));

        // An HS256 token is no good where only RS256 keys are configured (no algorithm confusion).
        await using var confused = await host.ConnectAsync(connect: false);
        Assert.Equal("unauthorized", await confused.ErrorCodeAsync(new { op = "connect", token = Tokens.Connection("alice") }));
    }

    [Fact]
    public async Task Rs256_FromAJwksAddress_IsAccepted()
    {
        using var rsa = RSA.Create(2048);
        var jwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(rsa.ExportParameters(false)) { KeyId = "jwks-key" });
        jwk.Use = "sig";
        var jwks = System.Text.Json.JsonSerializer.Serialize(new { keys = new[] { new { kty = jwk.Kty, kid = jwk.Kid, use = jwk.Use, n = jwk.N, e = jwk.E, alg = "RS256" } } });

        var issuer = WebApplication.CreateBuilder();
        issuer.WebHost.UseUrls("http://127.0.0.1:0");
        await using var issuerApp = issuer.Build();
        issuerApp.MapGet("/.well-known/jwks.json", () => Microsoft.AspNetCore.Http.Results.Text(jwks, "application/json"));
        await issuerApp.StartAsync();
        var address = issuerApp.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        await using var host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:Auth:Jwt:JwksUrl"] = $"{address}/.well-known/jwks.json",
        });

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            await using var client = await host.ConnectAsync(connect: false);
            var reply = await client.RequestAsync(new { op = "connect", token = Tokens.Rs256(rsa, "jwks-key", "bob") });
            if (reply.TryGetProperty("result", out _))
            {
                break;
            }

            // The keys are fetched in the background at start; until then the token is refused.
            Assert.True(DateTime.UtcNow < deadline, "the JWKS keys were never loaded");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task PreviousSecrets_StillWork_DuringRotation()
    {
        await using var host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:Auth:Jwt:Secret"] = Tokens.OtherSecret,
            ["PushService:Auth:Jwt:PreviousSecrets:0"] = Tokens.Secret,
        });
        await using var old = await host.ConnectAsync(connect: false);
        await old.ResultAsync(new { op = "connect", token = Tokens.Connection("u", secret: Tokens.Secret) });
        await using var current = await host.ConnectAsync(connect: false);
        await current.ResultAsync(new { op = "connect", token = Tokens.Connection("u", secret: Tokens.OtherSecret) });
    }

    [Fact]
    public async Task ExpiringToken_ClosesWith4001_UnlessRefreshed()
    {
        await using var host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:Auth:Jwt:Secret"] = Tokens.Secret,
            ["PushService:Auth:Jwt:ClockSkew"] = "00:00:00",
        });
        await using var refreshed = await host.ConnectAsync(connect: false);
        var connected = await refreshed.ResultAsync(new { op = "connect", token = Tokens.Connection("u1", TimeSpan.FromSeconds(3)) });
        Assert.True(connected.GetProperty("expires").GetInt64() > DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        await using var lapsed = await host.ConnectAsync(connect: false);
        await lapsed.ResultAsync(new { op = "connect", token = Tokens.Connection("u2", TimeSpan.FromSeconds(3)) });

        var result = await refreshed.ResultAsync(new { op = "refresh", token = Tokens.Connection("u1", TimeSpan.FromMinutes(5)) });
        Assert.True(result.GetProperty("expires").GetInt64() > DateTimeOffset.UtcNow.AddMinutes(4).ToUnixTimeSeconds());
        Assert.Equal("permission_denied", await refreshed.ErrorCodeAsync(new { op = "refresh", token = Tokens.Connection("someone-else") }));
        Assert.Equal("unauthorized", await refreshed.ErrorCodeAsync(new { op = "refresh", token = "garbage" }));

        var (code, reason) = await lapsed.ClosedAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(4001, code);
        Assert.Equal("token_expired", reason);
        Assert.Equal("{}", (await refreshed.ResultAsync(new { op = "ping" })).GetRawText());
    }

    [Fact]
    public async Task ExpiringSubscriptionToken_EndsTheSubscription()
    {
        await using var host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:Auth:Jwt:Secret"] = Tokens.Secret,
            ["PushService:Auth:Jwt:ClockSkew"] = "00:00:00",
            ["PushService:Namespaces:paid:RequireSubscriptionToken"] = "true",
        });
        await using var client = await host.ConnectAsync(connect: false);
        await client.ResultAsync(new { op = "connect", token = Tokens.Connection("u") });
        await client.ResultAsync(new { op = "subscribe", channel = "paid:x", token = Tokens.Subscription("u", "paid:x", TimeSpan.FromSeconds(2)) });
        var push = await client.NextPushAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("unsubscribed", push.GetProperty("type").GetString());
        Assert.Equal("token_expired", push.GetProperty("reason").GetString());
        Assert.Equal(WebSocketState.Open, client.State);
    }

    [Fact]
    public async Task ChannelsClaim_SubscribesAtConnect()
    {
        await using var host = GatewayHost.Start(new Dictionary<string, string?> { ["PushService:Auth:Jwt:Secret"] = Tokens.Secret });
        await host.PublishAsync("inbox#u9", "\"before\"");
        await using var client = await host.ConnectAsync(connect: false);
        var result = await client.ResultAsync(new { op = "connect", token = Tokens.Connection("u9", channels: ["inbox#u9", "inbox#someone-else", "bad name"]) });
        var subscriptions = result.GetProperty("subscriptions");
        Assert.Equal(1, subscriptions.GetProperty("inbox#u9").GetProperty("offset").GetInt64());
        Assert.False(subscriptions.TryGetProperty("inbox#someone-else", out _));

        await host.PublishAsync("inbox#u9", "\"after\"");
        var message = (await client.MessagesAsync("inbox#u9", 1))[0];
        Assert.Equal(2, message.GetProperty("offset").GetInt64());
        Assert.Equal("already_subscribed", await client.ErrorCodeAsync(new { op = "subscribe", channel = "inbox#u9" }));
    }
}

/// <summary>Abuse limits: node and user connection caps, connection attempts per IP, command floods, publish rates.</summary>
public sealed class LimitTests
{
    [Fact]
    public async Task ConnectionCaps_PerNodeAndPerUser()
    {
        await using var host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:Auth:Jwt:Secret"] = Tokens.Secret,
            ["PushService:Limits:MaxConnections"] = "3",
            ["PushService:Limits:MaxConnectionsPerUser"] = "1",
        });
        await using var first = await host.ConnectAsync(connect: false);
        await first.ResultAsync(new { op = "connect", token = Tokens.Connection("same") });
        await using var second = await host.ConnectAsync(connect: false);
        Assert.Equal("limit_exceeded", await second.ErrorCodeAsync(new { op = "connect", token = Tokens.Connection("same") }));
        Assert.Equal(4003, (await second.ClosedAsync()).Code);

        // The refused one is gone once its close completes; then two more fill the node's three places.
        for (var i = 0; i < 50 && (await host.GetJsonAsync("/api/v1/info")).GetProperty("nodes")[0].GetProperty("connections").GetInt32() > 1; i++)
        {
            await Task.Delay(100);
        }

        await using var b = await host.ConnectAsync(connect: false);
        await using var c = await host.ConnectAsync(connect: false);
        var full = new ClientWebSocket();
        full.Options.CollectHttpResponseDetails = true;
        await Assert.ThrowsAsync<WebSocketException>(() => full.ConnectAsync(host.WebSocketUri, CancellationToken.None));
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, full.HttpStatusCode);
    }

    [Fact]
    public async Task ConnectionAttemptsPerIp_Get429BeforeTheUpgrade()
    {
        await using var host = GatewayHost.Start(new Dictionary<string, string?> { ["PushService:Limits:ConnectionAttemptsPerIpPerMinute"] = "5" });
        var clients = new List<TestClient>();
        for (var i = 0; i < 5; i++)
        {
            clients.Add(await host.ConnectAsync());
        }

        var refused = new ClientWebSocket();
        refused.Options.CollectHttpResponseDetails = true;
        await Assert.ThrowsAsync<WebSocketException>(() => refused.ConnectAsync(host.WebSocketUri, CancellationToken.None));
        Assert.Equal(System.Net.HttpStatusCode.TooManyRequests, refused.HttpStatusCode);
        Assert.True(refused.HttpResponseHeaders!.ContainsKey("Retry-After"));
        foreach (var client in clients)
        {
            Assert.Equal("{}", (await client.ResultAsync(new { op = "ping" })).GetRawText());
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task PublishRatePerKey_Gets429WithRetryAfter()
    {
        await using var host = GatewayHost.Start(new Dictionary<string, string?> { ["PushService:Limits:PublishesPerSecondPerKey"] = "5" });
        var statuses = new List<System.Net.HttpStatusCode>();
        string? retryAfter = null;
        for (var i = 0; i < 30; i++)
        {
            using var response = await host.PostPublishAsync("rated", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            statuses.Add(response.StatusCode);
            if (response.StatusCode == System.Net.HttpStatusCode.TooManyRequests)
            {
                retryAfter ??= response.Headers.RetryAfter?.ToString();
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            }
        }

        Assert.Contains(System.Net.HttpStatusCode.OK, statuses);
        Assert.Contains(System.Net.HttpStatusCode.TooManyRequests, statuses);
        Assert.NotNull(retryAfter);
    }
}
