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

    private static readonly CacheControlHeaderValue Caching = new() { Public = true, MaxAge = TimeSpan.FromMinutes(5) };

    public static IEndpointConventionBuilder MapBrowserSdk(this IEndpointRouteBuilder endpoints)
    {
        var script = EmbeddedFile.Load(Resource, "text/javascript; charset=utf-8");
        return endpoints.MapGet(Path, (HttpContext context) =>
        {
            context.Response.Headers.AccessControlAllowOrigin = "*";
            return script.Serve(context, Caching);
        });
    }
}
