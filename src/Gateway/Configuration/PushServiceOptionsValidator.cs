using Microsoft.Extensions.Options;
using PushService.Gateway.Protocol;

namespace PushService.Gateway.Configuration;

/// <summary>Checks the whole options tree at start-up, so a bad value stops the node with a message naming the key.</summary>
internal sealed class PushServiceOptionsValidator : IValidateOptions<PushServiceOptions>
{
    private static readonly string[] KnownScopes = [ApiScopes.Publish, ApiScopes.Read, ApiScopes.Admin];

    public ValidateOptionsResult Validate(string? name, PushServiceOptions options)
    {
        var failures = new List<string>();
        void Check(bool ok, string key, string message)
        {
            if (!ok)
            {
                failures.Add($"PushService:{key}: {message}");
            }
        }

        var limits = options.Limits;
        Check(limits.MaxMessageBytes is >= 256 and <= 16 * 1024 * 1024, "Limits:MaxMessageBytes", "must be between 256 and 16777216.");
        Check(limits.ClientQueueMaxBytes >= limits.MaxMessageBytes, "Limits:ClientQueueMaxBytes", "must be at least Limits:MaxMessageBytes.");
        Check(limits.ClientQueueMaxMessages >= 1, "Limits:ClientQueueMaxMessages", "must be at least 1.");
        Check(limits.MaxChannelsPerConnection >= 1, "Limits:MaxChannelsPerConnection", "must be at least 1.");
        Check(limits.MaxBroadcastChannels >= 1, "Limits:MaxBroadcastChannels", "must be at least 1.");
        Check(limits.MaxHistoryLimit >= 1, "Limits:MaxHistoryLimit", "must be at least 1.");
        Check(limits.ConnectTimeout > TimeSpan.Zero, "Limits:ConnectTimeout", "must be positive.");
        Check(limits.CloseTimeout > TimeSpan.Zero, "Limits:CloseTimeout", "must be positive.");
        Check(options.IdempotencyWindow >= TimeSpan.FromSeconds(1), "IdempotencyWindow", "must be at least one second.");
        Check(options.WebSocket.PingInterval >= TimeSpan.FromSeconds(1), "WebSocket:PingInterval", "must be at least one second.");
        Check(options.WebSocket.PongTimeout >= TimeSpan.FromSeconds(1), "WebSocket:PongTimeout", "must be at least one second.");
        Check(options.Presence.RefreshInterval >= TimeSpan.FromMilliseconds(100), "Presence:RefreshInterval", "must be at least 100 ms.");
        Check(options.Cluster.HeartbeatInterval >= TimeSpan.FromMilliseconds(100), "Cluster:HeartbeatInterval", "must be at least 100 ms.");
        Check(options.Cluster.UnsubscribeDelay >= TimeSpan.Zero && options.Cluster.UnsubscribeDelay <= TimeSpan.FromMinutes(10), "Cluster:UnsubscribeDelay",
            "must be between 0 and 10 minutes.");
        Check(options.WebSocket.WriteCoalescing >= TimeSpan.Zero && options.WebSocket.WriteCoalescing <= TimeSpan.FromSeconds(1), "WebSocket:WriteCoalescing",
            "must be between 0 and 1 second.");
        Check(options.Drain.Delay >= TimeSpan.Zero && options.Drain.Delay <= TimeSpan.FromMinutes(10), "Drain:Delay", "must be between 0 and 10 minutes.");
        Check(options.Drain.Window >= TimeSpan.Zero && options.Drain.Window <= TimeSpan.FromMinutes(30), "Drain:Window", "must be between 0 and 30 minutes.");
        Check(options.Drain.Waves is >= 1 and <= 10_000, "Drain:Waves", "must be between 1 and 10000.");
        Check(options.NodeId.Length <= 128, "NodeId", "must be at most 128 characters.");
        Check(options.Sse.Retry >= TimeSpan.FromMilliseconds(100) && options.Sse.Retry <= TimeSpan.FromMinutes(10), "Sse:Retry", "must be between 100 ms and 10 minutes.");
        Check(options.Sse.MaxQueryTokenLifetime >= TimeSpan.FromSeconds(10) && options.Sse.MaxQueryTokenLifetime <= TimeSpan.FromDays(1), "Sse:MaxQueryTokenLifetime",
            "must be between 10 seconds and 1 day.");

        foreach (var origin in options.WebSocket.AllowedOrigins)
        {
            Check(origin == "*" || Uri.TryCreate(origin, UriKind.Absolute, out _), "WebSocket:AllowedOrigins",
                $"'{origin}' is neither '*' nor an absolute origin such as https://app.example.com.");
        }

        ValidateNamespace(options.DefaultNamespace, "DefaultNamespace", Check);
        foreach (var (ns, nsOptions) in options.Namespaces)
        {
            Check(ns.Length > 0 && !ns.Contains(':', StringComparison.Ordinal) && ChannelName.IsValid(ns), $"Namespaces:{ns}",
                "a namespace name is 1 to 255 channel-name characters without ':'.");
            ValidateNamespace(nsOptions, $"Namespaces:{ns}", Check);
        }

        for (var i = 0; i < options.Api.Keys.Count; i++)
        {
            var key = options.Api.Keys[i];
            Check(key.Key.Length >= 16, $"Api:Keys:{i}:Key", "must be at least 16 characters.");
            Check(key.Scopes.Count > 0, $"Api:Keys:{i}:Scopes", "must name at least one of publish, read, admin.");
            foreach (var scope in key.Scopes)
            {
                Check(KnownScopes.Contains(scope, StringComparer.Ordinal), $"Api:Keys:{i}:Scopes", $"'{scope}' is not one of publish, read, admin.");
            }
        }

        var jwt = options.Auth.Jwt;
        Check(jwt.Secret.Length == 0 || jwt.Secret.Length >= 32, "Auth:Jwt:Secret", "an HS256 secret must be at least 32 characters (256 bits).");
        Check(jwt.PreviousSecrets.All(s => s.Length >= 32), "Auth:Jwt:PreviousSecrets", "every HS256 secret must be at least 32 characters.");
        Check(jwt.PreviousSecrets.Count == 0 || jwt.Secret.Length > 0, "Auth:Jwt:PreviousSecrets", "needs a current Auth:Jwt:Secret.");
        Check(jwt.JwksUrl.Length == 0 || (Uri.TryCreate(jwt.JwksUrl, UriKind.Absolute, out var jwks) && jwks.Scheme is "https" or "http"), "Auth:Jwt:JwksUrl",
            "must be an absolute http(s) address.");
        Check(jwt.JwksRefreshInterval >= TimeSpan.FromSeconds(10), "Auth:Jwt:JwksRefreshInterval", "must be at least 10 seconds.");
        for (var i = 0; i < jwt.PublicKeys.Count; i++)
        {
            Check(TokenKeys.TryReadPublicKey(jwt.PublicKeys[i], out _), $"Auth:Jwt:PublicKeys:{i}", "is not a PEM RSA public key.");
        }

        Check(limits.MaxConnections >= 0, "Limits:MaxConnections", "must not be negative.");
        Check(limits.MaxConnectionsPerUser >= 0, "Limits:MaxConnectionsPerUser", "must not be negative.");
        Check(limits.ConnectionAttemptsPerIpPerMinute >= 0, "Limits:ConnectionAttemptsPerIpPerMinute", "must not be negative.");
        Check(limits.CommandsPerSecond >= 1, "Limits:CommandsPerSecond", "must be at least 1.");
        Check(limits.PublishesPerSecondPerKey >= 0, "Limits:PublishesPerSecondPerKey", "must not be negative.");

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void ValidateNamespace(NamespaceOptions ns, string key, Action<bool, string, string> check)
    {
        check(ns.HistorySize is >= 0 and <= 100_000, $"{key}:HistorySize", "must be between 0 and 100000.");
        check(ns.HistoryTtl >= TimeSpan.Zero, $"{key}:HistoryTtl", "must not be negative.");
        check(ns.HistorySize == 0 || ns.HistoryTtl > TimeSpan.Zero, $"{key}:HistoryTtl", "must be positive when HistorySize is set.");
    }
}
