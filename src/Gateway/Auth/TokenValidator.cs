using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using PushService.Gateway.Configuration;

namespace PushService.Gateway.Auth;

/// <summary>What a valid connection token says.</summary>
/// <param name="UserId">The <c>sub</c> claim; empty for anonymous.</param>
/// <param name="Channels">The <c>channels</c> claim: channels the server subscribes the client to at connect.</param>
/// <param name="ExpiresAt">The <c>exp</c> claim, when there is one.</param>
public sealed record ConnectionIdentity(string UserId, IReadOnlyList<string> Channels, DateTimeOffset? ExpiresAt)
{
    /// <summary>An anonymous client.</summary>
    public static ConnectionIdentity Anonymous { get; } = new("", [], null);
}

/// <summary>
/// Validates connection and subscription tokens (contract section 4) with Microsoft.IdentityModel: HS256 with the current
/// or a previous shared secret, RS256 with configured public keys or the keys of a JWKS address. Only those algorithms
/// are accepted (an unsigned <c>alg: none</c> token never is), <c>exp</c> is required, and <c>aud</c> / <c>iss</c> are
/// checked when configured.
/// </summary>
public sealed class TokenValidator
{
    private readonly JsonWebTokenHandler _handler = new();
    private readonly TokenValidationParameters? _parameters;
    private readonly AuthOptions _auth;

    /// <summary>Creates the validator from the auth options.</summary>
    public TokenValidator(IOptions<PushServiceOptions> options, JwksKeySource jwks)
    {
        _auth = options.Value.Auth;
        var jwt = _auth.Jwt;
        if (!jwt.Enabled)
        {
            return;
        }

        var fixedKeys = new List<SecurityKey>();
        foreach (var secret in new[] { jwt.Secret }.Concat(jwt.PreviousSecrets).Where(s => s.Length > 0))
        {
            fixedKeys.Add(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(secret)));
        }

        foreach (var pem in jwt.PublicKeys)
        {
            if (TokenKeys.TryReadPublicKey(pem, out var key))
            {
                fixedKeys.Add(key!);
            }
        }

        var algorithms = new List<string>();
        if (jwt.Secret.Length > 0)
        {
            algorithms.Add(SecurityAlgorithms.HmacSha256);
        }

        if (jwt.PublicKeys.Count > 0 || jwt.JwksUrl.Length > 0)
        {
            algorithms.Add(SecurityAlgorithms.RsaSha256);
        }

        _parameters = new TokenValidationParameters
        {
            IssuerSigningKeyResolver = (_, _, kid, _) =>
            {
                jwks.OnUnknownKey(kid);
                return [.. fixedKeys, .. jwks.Keys];
            },
            ValidAlgorithms = algorithms,
            ValidateIssuerSigningKey = true,
            RequireSignedTokens = true,
            RequireExpirationTime = true,
            ValidateLifetime = true,
            ClockSkew = jwt.ClockSkew,
            ValidateAudience = jwt.Audience.Length > 0,
            ValidAudience = jwt.Audience.Length > 0 ? jwt.Audience : null,
            ValidateIssuer = jwt.Issuer.Length > 0,
            ValidIssuer = jwt.Issuer.Length > 0 ? jwt.Issuer : null,
        };
    }

    /// <summary>True when tokens are checked.</summary>
    public bool Enabled => _parameters is not null;

    /// <summary>
    /// The identity a connect command's token gives, or null when the client may not connect.
    /// With no keys configured every client is anonymous; with keys, a token is needed unless anonymous access is on.
    /// </summary>
    public async ValueTask<ConnectionIdentity?> ValidateConnectionTokenAsync(string? token)
    {
        if (_parameters is null)
        {
            return ConnectionIdentity.Anonymous;
        }

        if (string.IsNullOrEmpty(token))
        {
            return _auth.AllowAnonymous ? ConnectionIdentity.Anonymous : null;
        }

        var jwt = await ValidateAsync(token);
        if (jwt is null)
        {
            return null;
        }

        var channels = new List<string>();
        if (jwt.TryGetPayloadValue<JsonElement>("channels", out var element) && element.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in element.EnumerateArray())
            {
                if (item.ValueKind == JsonValueKind.String && item.GetString() is { } channel)
                {
                    channels.Add(channel);
                }
            }
        }

        return new ConnectionIdentity(Subject(jwt), channels, ExpiresAt(jwt));
    }

    /// <summary>
    /// Checks a subscription token: valid, for <paramref name="user"/> (<c>sub</c>) and <paramref name="channel"/>
    /// (<c>channel</c>). Returns its expiry, or null when it is not good for this subscription.
    /// </summary>
    public async ValueTask<(bool Valid, DateTimeOffset? ExpiresAt)> ValidateSubscriptionTokenAsync(string? token, string user, string channel)
    {
        if (_parameters is null || string.IsNullOrEmpty(token))
        {
            return (false, null);
        }

        var jwt = await ValidateAsync(token);
        if (jwt is null || !string.Equals(Subject(jwt), user, StringComparison.Ordinal)
            || !jwt.TryGetPayloadValue<string>("channel", out var claimed) || !string.Equals(claimed, channel, StringComparison.Ordinal))
        {
            return (false, null);
        }

        return (true, ExpiresAt(jwt));
    }

    private async Task<JsonWebToken?> ValidateAsync(string token)
    {
        var result = await _handler.ValidateTokenAsync(token, _parameters);
        return result.IsValid ? result.SecurityToken as JsonWebToken : null;
    }

    private static string Subject(JsonWebToken jwt) => jwt.TryGetPayloadValue<string>("sub", out var sub) ? sub ?? "" : "";

    private static DateTimeOffset? ExpiresAt(JsonWebToken jwt) => jwt.ValidTo == DateTime.MinValue ? null : new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero);
}
