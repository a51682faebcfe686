using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace PushService.Testing;

/// <summary>Makes tokens the way an application backend would, and the ways an attacker would.</summary>
public static class Tokens
{
    public const string Secret = "test-secret-that-is-long-enough-for-hs256!";

    public const string OtherSecret = "another-secret-that-is-long-enough-for-hs256";

    public static string Connection(string user, TimeSpan? lifetime = null, string secret = Secret, IEnumerable<string>? channels = null,
        string? audience = null) =>
        Create(new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(secret)), SecurityAlgorithms.HmacSha256), user, lifetime, channels, audience);

    public static string Subscription(string user, string channel, TimeSpan? lifetime = null, string secret = Secret, string? audience = null) =>
        Create(new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(secret)), SecurityAlgorithms.HmacSha256), user, lifetime, null, audience,
            new Dictionary<string, object> { ["channel"] = channel });

    public static string Rs256(RSA key, string keyId, string user, TimeSpan? lifetime = null, string? audience = null) =>
        Create(new SigningCredentials(new RsaSecurityKey(key) { KeyId = keyId }, SecurityAlgorithms.RsaSha256), user, lifetime, null, audience);

    /// <summary>An unsigned token (<c>alg: none</c>) claiming to be <paramref name="user"/>.</summary>
    public static string AlgNone(string user)
    {
        static string Part(string json) => Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(json));
        var exp = DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds();
        return $"{Part("{\"alg\":\"none\",\"typ\":\"JWT\"}")}.{Part($"{{\"sub\":\"{user}\",\"exp\":{exp}}}")}.";
    }

    private static string Create(SigningCredentials credentials, string user, TimeSpan? lifetime, IEnumerable<string>? channels, string? audience,
        Dictionary<string, object>? extra = null)
    {
        var claims = new Dictionary<string, object> { ["sub"] = user };
        if (channels is not null)
        {
            claims["channels"] = channels.ToArray();
        }

        foreach (var (key, value) in extra ?? [])
        {
            claims[key] = value;
        }

        var now = DateTime.UtcNow;
        var expires = now + (lifetime ?? TimeSpan.FromMinutes(5));
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Claims = claims,
            Audience = audience,
            IssuedAt = expires < now ? expires.AddMinutes(-1) : now,
            NotBefore = expires < now ? expires.AddMinutes(-1) : now,
            Expires = expires,
            SigningCredentials = credentials,
        });
    }
}
