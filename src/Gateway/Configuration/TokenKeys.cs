using System.Security.Cryptography;
using Microsoft.IdentityModel.Tokens;

namespace PushService.Gateway.Configuration;

/// <summary>Reads configured signing keys: the options validator checks them at start-up, the token validator uses them.</summary>
public static class TokenKeys
{
    /// <summary>Reads a PEM RSA public key (SubjectPublicKeyInfo or PKCS#1).</summary>
    public static bool TryReadPublicKey(string pem, out RsaSecurityKey? key)
    {
        key = null;
        try
        {
            var rsa = RSA.Create();
            rsa.ImportFromPem(pem);
            key = new RsaSecurityKey(rsa);
            return true;
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            return false;
        }
    }
}
