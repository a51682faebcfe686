using System.Reflection;
using System.Security.Cryptography;
using Microsoft.Net.Http.Headers;

namespace PushService.Gateway.Sdk;

/// <summary>
/// Serves the TypeScript client, built to one ES module (<c>src/Sdk/js/dist/push.js</c>) and embedded in the gateway, at
/// <c>/sdk/push.js</c>, so a page needs nothing but the gateway: <c>import { PushClient } from "https://push.example.com/sdk/push.js"</c>.
/// Any origin may load it (module scripts are fetched with CORS); it is revalidated by its ETag after five minutes.
/// </summary>
internal static class BrowserSdkEndpoint
{
    public const string Path = "/sdk/push.js";
    private const string Resource = "sdk/push.js";

    public static IEndpointConventionBuilder MapBrowserSdk(this IEndpointRouteBuilder endpoints)
    {
        var script = Load();
        var etag = new EntityTagHeaderValue($"\"{Convert.ToHexStringLower(SHA256.HashData(script))[..16]}\"");
        return endpoints.MapGet(Path, (HttpContext context) =>
        {
            var headers = context.Response.GetTypedHeaders();
            headers.ETag = etag;
            headers.CacheControl = new CacheControlHeaderValue { Public = true, MaxAge = TimeSpan.FromMinutes(5) };
            context.Response.Headers.AccessControlAllowOrigin = "*";
            context.Response.Headers.XContentTypeOptions = "nosniff";
            var ifNoneMatch = context.Request.GetTypedHeaders().IfNoneMatch;
            if (ifNoneMatch.Any(tag => tag.Compare(etag, useStrongComparison: false)))
            {
                return Results.StatusCode(StatusCodes.Status304NotModified);
            }

            return Results.Bytes(script, "text/javascript; charset=utf-8");
        });
    }

    private static byte[] Load()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(Resource)
            ?? throw new InvalidOperationException($"The gateway was built without its browser client ({Resource}).");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
