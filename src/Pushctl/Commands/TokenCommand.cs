using System.CommandLine;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace PushService.Pushctl.Commands;

/// <summary>
/// <c>pushctl token mint</c> and <c>pushctl token check</c>: HS256 connection and subscription tokens as the gateway takes
/// them (docs/protocol.md, tokens), signed and checked with Microsoft.IdentityModel, as the gateway checks them.
/// </summary>
internal static class TokenCommand
{
    /// <summary>The gateway refuses shorter secrets (PushService:Auth:Jwt:Secret).</summary>
    private const int MinimumSecretLength = 32;

    public static Command Create(GlobalOptions globals)
    {
        var secret = new Option<string?>("--secret")
        {
            Description = "The HS256 secret the gateway is configured with (PushService:Auth:Jwt:Secret) [env: PUSHCTL_JWT_SECRET]",
            Recursive = true,
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("PUSHCTL_JWT_SECRET") is { Length: > 0 } s ? s : null,
        };
        var command = new Command("token", "Mint and check connection and subscription tokens (HS256)") { secret, Mint(globals, secret), Check(globals, secret) };
        return command;
    }

    private static Command Mint(GlobalOptions globals, Option<string?> secret)
    {
        var user = new Option<string>("--sub", "--user") { Description = "The user id (sub); empty for an anonymous token", DefaultValueFactory = _ => "" };
        var ttl = new Option<TimeSpan>("--ttl")
        {
            Description = "How long the token lives, as hh:mm:ss or with a unit: 90s, 15m, 2h, 7d",
            DefaultValueFactory = _ => TimeSpan.FromHours(1),
            CustomParser = result => ParseDuration(result.Tokens.Single().Value) is { } value ? value : Fail(result, $"'{result.Tokens.Single().Value}' is not a duration (90s, 15m, 2h, 7d or hh:mm:ss)."),
        };
        var channel = new Option<string?>("--channel") { Description = "Make a subscription token for this channel (claim 'channel')" };
        var subscribe = new Option<string[]>("--subscribe")
        {
            Description = "A connection token whose client the gateway subscribes to these channels at connect (claim 'channels')",
            AllowMultipleArgumentsPerToken = true,
        };
        var command = new Command("mint", "Print a signed token") { user, ttl, channel, subscribe };
        command.SetAction(parsed =>
        {
            var key = Key(parsed.GetValue(secret));
            var lifetime = parsed.GetValue(ttl);
            if (lifetime <= TimeSpan.Zero)
            {
                throw new CliException(ExitCodes.BadInput, "--ttl must be longer than zero.");
            }

            var claims = new Dictionary<string, object> { ["sub"] = parsed.GetValue(user)! };
            if (parsed.GetValue(channel) is { Length: > 0 } name)
            {
                claims["channel"] = Cli.Channel(name);
            }

            if (parsed.GetValue(subscribe) is { Length: > 0 } channels)
            {
                if (claims.ContainsKey("channel"))
                {
                    throw new CliException(ExitCodes.BadInput, "--channel makes a subscription token and --subscribe a connection token: give one of them.");
                }

                claims["channels"] = channels.Select(Cli.Channel).ToArray();
            }

            var now = DateTime.UtcNow;
            var token = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
            {
                Claims = claims,
                IssuedAt = now,
                NotBefore = now,
                Expires = now + lifetime,
                SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.HmacSha256),
            });
            if (parsed.GetValue(globals.Json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new { token, expires = (now + lifetime).ToString("O") }));
            }
            else
            {
                Console.WriteLine(token);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Check(GlobalOptions globals, Option<string?> secret)
    {
        var token = new Argument<string>("token") { Description = "The token, or - to read it from standard input" };
        var channel = new Option<string?>("--channel") { Description = "Also check it is a subscription token for this channel" };
        var command = new Command("check", "Check a token's signature and lifetime and print its claims; exit 3 if it is not valid") { token, channel };
        command.SetAction(async (parsed, cancellationToken) =>
        {
            var key = Key(parsed.GetValue(secret));
            var text = parsed.GetValue(token)!;
            if (text == "-")
            {
                text = (await Console.In.ReadToEndAsync(cancellationToken)).Trim();
            }

            var result = await new JsonWebTokenHandler().ValidateTokenAsync(text, new TokenValidationParameters
            {
                IssuerSigningKey = key,
                ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
                ValidateIssuer = false,
                ValidateAudience = false,
                RequireExpirationTime = true,
                ClockSkew = TimeSpan.Zero,
            });
            if (!result.IsValid)
            {
                throw new CliException(ExitCodes.Refused, $"the token is not valid: {Reason(result.Exception)}");
            }

            var jwt = (JsonWebToken)result.SecurityToken;
            var claimed = jwt.TryGetPayloadValue<string>("channel", out var c) ? c : null;
            if (parsed.GetValue(channel) is { Length: > 0 } wanted && !string.Equals(claimed, wanted, StringComparison.Ordinal))
            {
                throw new CliException(ExitCodes.Refused, $"the token is not a subscription token for '{wanted}' (its channel claim is {(claimed is null ? "absent" : $"'{claimed}'")}).");
            }

            var claims = JsonDocument.Parse(Base64UrlEncoder.Decode(jwt.EncodedPayload)).RootElement;
            if (parsed.GetValue(globals.Json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new { valid = true, claims }));
            }
            else
            {
                var kind = claimed is not null ? $"a subscription token for {claimed}" : "a connection token";
                var sub = jwt.Subject.Length > 0 ? $"user '{jwt.Subject}'" : "an anonymous user";
                Console.WriteLine($"valid: {kind} of {sub}, expires {jwt.ValidTo:yyyy-MM-dd HH:mm:ss} UTC (in {Until(jwt.ValidTo)})");
                Console.WriteLine(claims.GetRawText());
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static SymmetricSecurityKey Key(string? secret)
    {
        if (string.IsNullOrEmpty(secret))
        {
            throw new CliException(ExitCodes.BadInput, "give the gateway's HS256 secret with --secret or PUSHCTL_JWT_SECRET.");
        }

        if (secret.Length < MinimumSecretLength)
        {
            throw new CliException(ExitCodes.BadInput, $"the secret must be at least {MinimumSecretLength} characters, as the gateway requires.");
        }

        return new SymmetricSecurityKey(Encoding.UTF8.GetBytes(secret));
    }

    private static string Reason(Exception? exception) => exception switch
    {
        SecurityTokenExpiredException expired => $"it expired at {expired.Expires:yyyy-MM-dd HH:mm:ss} UTC",
        SecurityTokenNotYetValidException early => $"it is valid only from {early.NotBefore:yyyy-MM-dd HH:mm:ss} UTC",
        SecurityTokenInvalidSignatureException or SecurityTokenSignatureKeyNotFoundException => "its signature does not match the secret",
        SecurityTokenNoExpirationException => "it has no expiry (exp)",
        SecurityTokenMalformedException => "it is not a JWT",
        null => "unknown",
        _ => exception.Message,
    };

    private static string Until(DateTime moment)
    {
        var left = moment - DateTime.UtcNow;
        return left.TotalHours >= 48 ? $"{left.TotalDays:0} d" : left.TotalMinutes >= 120 ? $"{left.TotalHours:0} h" : $"{Math.Max(0, left.TotalMinutes):0} min";
    }

    /// <summary>90s, 15m, 2h, 7d, or a TimeSpan (hh:mm:ss).</summary>
    internal static TimeSpan? ParseDuration(string text)
    {
        if (text.Length >= 2 && long.TryParse(text[..^1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n))
        {
            TimeSpan? unit = text[^1] switch { 's' => TimeSpan.FromSeconds(1), 'm' => TimeSpan.FromMinutes(1), 'h' => TimeSpan.FromHours(1), 'd' => TimeSpan.FromDays(1), _ => null };
            if (unit is { } u && n <= 3650L * 24 * 3600)
            {
                return u * n;
            }
        }

        return TimeSpan.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var span) ? span : null;
    }

    private static TimeSpan Fail(System.CommandLine.Parsing.ArgumentResult result, string message)
    {
        result.AddError(message);
        return default;
    }
}
