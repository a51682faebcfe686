using System.Security.Claims;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace PushService.Testing;

/// <summary>Makes HS256 tokens the way an application backend would.</summary>
public static class Tokens
{
    public const string Secret = "test-secret-that-is-long-enough-for-hs256!";

    public static string Connection(string user, TimeSpan? lifetime = null, string secret = Secret, IEnumerable<string>? channels = null)
    {
        var claims = new Dictionary<string, object> { ["sub"] = user };
        if (channels is not null)
        {
            claims["channels"] = channels.ToArray();
        }

        var now = DateTime.UtcNow;
        var expires = now + (lifetime ?? TimeSpan.FromMinutes(5));
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Claims = claims,
            IssuedAt = expires < now ? expires.AddMinutes(-1) : now,
            NotBefore = expires < now ? expires.AddMinutes(-1) : now,
            Expires = expires,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(secret)), SecurityAlgorithms.HmacSha256),
        });
    }
}
