using Microsoft.Net.Http.Headers;
using PushService.Gateway.Sdk;

namespace PushService.Gateway.WebConsole;

/// <summary>
/// Serves the web console: one page, its script (built from <c>web/src/console.ts</c>) and its style sheet, embedded in the
/// gateway so <c>dotnet run</c> serves them with no build step of their own. The page gets every figure from the REST API
/// and subscribes through the browser client (<c>/sdk/push.js</c>), so it can do nothing its API key could not.
/// </summary>
internal static class ConsoleEndpoints
{
    /// <summary>Where the console lives. Its files use relative addresses, so it also works under a path prefix.</summary>
    public const string Path = "/console";

    /// <summary>
    /// Only the gateway's own files run, nothing inline, and the page talks to its own origin alone (WebSockets included,
    /// named explicitly because older browsers do not count ws: as 'self'); no other site may frame it.
    /// </summary>
    private static string Policy(string sockets) => "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + $"connect-src 'self'{sockets}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private static readonly (string File, string ContentType)[] Assets =
    [
        ("index.html", "text/html; charset=utf-8"),
        ("console.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
    ];

    public static void MapPushConsole(this IEndpointRouteBuilder endpoints)
    {
        foreach (var (file, contentType) in Assets)
        {
            var asset = Asset.Load(file, contentType);
            if (asset.IsPage)
            {
                // Routing matches /console and /console/ alike; without the slash the page's relative addresses would
                // point one level up, so that one is sent to the other.
                endpoints.MapGet(Path, (HttpContext context) => context.Request.Path.Value?.EndsWith('/') == true
                    ? asset.Serve(context)
                    : Results.Redirect(context.Request.PathBase + Path + "/" + context.Request.QueryString)).ExcludeFromDescription();
            }
            else
            {
                endpoints.MapGet($"{Path}/{file}", asset.Serve).ExcludeFromDescription();
            }
        }
    }

    private sealed record Asset(EmbeddedFile File, bool IsPage)
    {
        // The page is revalidated on every load, so a new gateway version's page is never mixed with old files; its
        // script and style are revalidated after five minutes, as /sdk/push.js is.
        private static readonly CacheControlHeaderValue PageCaching = new() { NoCache = true };
        private static readonly CacheControlHeaderValue FileCaching = new() { Private = true, MaxAge = TimeSpan.FromMinutes(5) };

        public static Asset Load(string file, string contentType) =>
            new(EmbeddedFile.Load($"console/{file}", contentType), file.EndsWith(".html", StringComparison.Ordinal));

        public IResult Serve(HttpContext context)
        {
            if (IsPage)
            {
                // The Host header goes into the policy only where it is a plain host name and port.
                var host = context.Request.Host.Value ?? "";
                var sockets = host.Length > 0 && host.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or ':' or '[' or ']')
                    ? $" ws://{host} wss://{host}"
                    : "";
                var response = context.Response;
                response.Headers.ContentSecurityPolicy = Policy(sockets);
                response.Headers.XFrameOptions = "DENY";
                response.Headers["Referrer-Policy"] = "no-referrer";
            }

            return File.Serve(context, IsPage ? PageCaching : FileCaching);
        }
    }
}
