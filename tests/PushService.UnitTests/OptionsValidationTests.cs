using Microsoft.AspNetCore.Http;
using PushService.Gateway.Configuration;
using PushService.Gateway.Connections;

namespace PushService.UnitTests;

public sealed class OptionsValidationTests
{
    private static IReadOnlyList<string> Failures(Action<PushServiceOptions> configure)
    {
        var options = new PushServiceOptions();
        configure(options);
        var result = new PushServiceOptionsValidator().Validate(null, options);
        return result.Failures?.ToList() ?? [];
    }

    [Fact]
    public void Defaults_AreValid() => Assert.Empty(Failures(_ => { }));

    [Fact]
    public void BadValues_NameTheirKeys()
    {
        var failures = Failures(o =>
        {
            o.Limits.MaxMessageBytes = 10;
            o.Limits.MaxChannelsPerConnection = 0;
            o.Namespaces["bad:name"] = new NamespaceOptions();
            o.Namespaces["chat"] = new NamespaceOptions { HistorySize = -1 };
            o.Api.Keys.Add(new ApiKeyOptions { Key = "short", Scopes = ["write"] });
            o.Auth.Jwt.Secret = "too-short";
            o.WebSocket.AllowedOrigins.Add("not an origin");
            o.Cluster.UnsubscribeDelay = TimeSpan.FromSeconds(-1);
        });

        Assert.Contains(failures, f => f.StartsWith("PushService:Limits:MaxMessageBytes", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("PushService:Limits:MaxChannelsPerConnection", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("PushService:Namespaces:bad:name", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("PushService:Namespaces:chat:HistorySize", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("PushService:Api:Keys:0:Key", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("'write' is not one of", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("PushService:Auth:Jwt:Secret", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("PushService:WebSocket:AllowedOrigins", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("PushService:Cluster:UnsubscribeDelay", StringComparison.Ordinal));
    }
}

public sealed class OriginPolicyTests
{
    [Fact]
    public void NoOrigin_IsAllowedUnlessRequired()
    {
        Assert.True(OriginPolicy.IsAllowed(null, "push.example.com", new WebSocketEndpointOptions()));
        Assert.False(OriginPolicy.IsAllowed(null, "push.example.com", new WebSocketEndpointOptions { RequireOrigin = true }));
    }

    [Fact]
    public void ListedOrigins_AndSameHost_AreAllowed_OthersNot()
    {
        var options = new WebSocketEndpointOptions { AllowedOrigins = ["https://app.example.com"] };
        Assert.True(OriginPolicy.IsAllowed("https://app.example.com", "push.example.com", options));
        Assert.True(OriginPolicy.IsAllowed("https://APP.example.com/", "push.example.com", options));
        Assert.True(OriginPolicy.IsAllowed("https://push.example.com", "push.example.com", options));
        Assert.False(OriginPolicy.IsAllowed("https://evil.example.net", "push.example.com", options));
        Assert.False(OriginPolicy.IsAllowed("null", "push.example.com", options));
        Assert.True(OriginPolicy.IsAllowed("https://evil.example.net", "push.example.com", new WebSocketEndpointOptions { AllowedOrigins = ["*"] }));
    }
}
