using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using PushService.Gateway.Configuration;

namespace PushService.Gateway.Auth;

/// <summary>What a valid connection token says.</summary>
/// <param name="UserId">The <c>sub</c> claim; empty for anonymous.</param>
/// <param name="Channels">The <c>channels</c> claim: channels to subscribe at connect.</param>
/// <param name="ExpiresAt">The <c>exp</c> claim, when there is one.</param>
public sealed record ConnectionIdentity(string UserId, IReadOnlyList<string> Channels, DateTimeOffset? ExpiresAt)
{
    /// <summary>An anonymous client.</summary>
    public static ConnectionIdentity Anonymous { get; } = new("", [], null);
}

/// <summary>Validates connection tokens (contract section 4) with Microsoft.IdentityModel.</summary>
public sealed class TokenValidator
{
    private readonly JsonWebTokenHandler _handler = new();
    private readonly TokenValidationParameters? _parameters;
    private readonly AuthOptions _auth;

    /// <summary>Creates the validator from the auth options.</summary>
    public TokenValidator(IOptions<PushServiceOptions> options)
    {
        _auth = options.Value.Auth;
        var jwt = _auth.Jwt;
        if (jwt.Secret.Length > 0)
        {
            _parameters = new TokenValidationParameters
            {
                IssuerSigningKey = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(jwt.Secret)),
                ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
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
    }

    /// <summary>True when a secret is configured and tokens are checked.</summary>
    public bool Enabled => _parameters is not null;

    /// <summary>
    /// The identity a connect command's token gives, or null when the client may not connect.
    /// With no secret configured every client is anonymous; with one, a token is needed unless anonymous access is on.
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

        var result = await _handler.ValidateTokenAsync(token, _parameters);
        if (!result.IsValid || result.SecurityToken is not JsonWebToken jwt)
        {
            return null;
        }

        var user = jwt.TryGetPayloadValue<string>("sub", out var sub) ? sub : "";
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

        return new ConnectionIdentity(user ?? "", channels, jwt.ValidTo == DateTime.MinValue ? null : new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero));
    }
}
