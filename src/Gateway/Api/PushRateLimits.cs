using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace PushService.Gateway.Api;

/// <summary>The rate-limit policies of the gateway's endpoints.</summary>
internal static class PushRateLimits
{
    /// <summary>Publishes per API key.</summary>
    public const string Publish = "pushservice-publish";

    /// <summary>
    /// Whom a publish counts against: a hash of the presented API key (the limiter runs before authentication, and the key
    /// itself is never kept), or the caller's address when no key is presented (protected mode).
    /// </summary>
    public static string CallerKey(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        return header.Length > 0
            ? "key:" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(header)), 0, 16)
            : "ip:" + (context.Connection.RemoteIpAddress?.ToString() ?? "unknown");
    }
}
