using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using PushService.Broker;
using PushService.Gateway.Api;
using PushService.Gateway.Configuration;
using PushService.Gateway.Connections;
using PushService.Gateway.Sdk;
using PushService.Gateway.WebConsole;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the gateway's endpoints.</summary>
public static class PushEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps <c>/ws</c>, the REST API under <c>/api/v1</c>, <c>/sdk/push.js</c>, the web console at <c>/console</c>,
    /// <c>/healthz</c>, <c>/readyz</c> and <c>/metrics</c>.
    /// Call on a <see cref="WebApplication"/> after <c>AddPushGateway</c>.
    /// </summary>
    public static WebApplication MapPushEndpoints(this WebApplication app)
    {
        // Built now so the protected-mode warning is in the start-up log, not at the first API call.
        _ = app.Services.GetRequiredService<ApiKeyAuthenticator>();

        // Every request's logs carry the node: one shared scope state, on top of ASP.NET Core's own request scope.
        var nodeScope = PushService.Gateway.Telemetry.LogScope.Node(app.Services.GetRequiredService<PushService.Gateway.Configuration.NodeIdentity>().Id);
        var requestLogger = app.Services.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>().CreateLogger("PushService.Gateway.Requests");
        app.Use(async (context, next) =>
        {
            // A traced request says which trace it is in (W3C Trace Context's traceresponse), so a caller can look it up.
            // Only an activity a tracer provider sampled counts: without one, ASP.NET Core still makes an activity of its
            // own (no source) and takes the caller's sampled flag, though nothing records it.
            if (System.Diagnostics.Activity.Current is { Recorded: true, IdFormat: System.Diagnostics.ActivityIdFormat.W3C, Source.Name.Length: > 0 } activity)
            {
                context.Response.Headers["traceresponse"] = activity.Id;
            }

            using (requestLogger.BeginScope(nodeScope))
            {
                await next(context);
            }
        });
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseRouting();
        app.UseRateLimiter();

        // Resolved once: taking it from RequestServices would create a DI scope per request, kept for the socket's lifetime.
        var webSockets = app.Services.GetRequiredService<WebSocketEndpoint>();
        app.Map(WebSocketEndpoint.Path, (RequestDelegate)webSockets.HandleAsync);

        var api = app.MapGroup("/api/v1");
        api.AddEndpointFilter(new ApiRejectionFilter(app.Services.GetRequiredService<PushService.Gateway.Telemetry.PushMetrics>()));
        api.MapPost("/channels/{channel}/messages", PushApi.PublishAsync).AddEndpointFilter(new ApiKeyFilter(ApiScopes.Publish))
            .RequireRateLimiting(PushRateLimits.Publish);
        api.MapPost("/broadcast", PushApi.BroadcastAsync).AddEndpointFilter(new ApiKeyFilter(ApiScopes.Publish))
            .RequireRateLimiting(PushRateLimits.Publish);
        api.MapGet("/channels/{channel}/history", PushApi.HistoryAsync).AddEndpointFilter(new ApiKeyFilter(ApiScopes.Read));
        api.MapGet("/channels/{channel}/presence", PushApi.PresenceAsync).AddEndpointFilter(new ApiKeyFilter(ApiScopes.Read));
        api.MapGet("/channels", PushApi.ChannelsAsync).AddEndpointFilter(new ApiKeyFilter(ApiScopes.Read));
        api.MapGet("/info", PushApi.InfoAsync).AddEndpointFilter(new ApiKeyFilter(ApiScopes.Read));
        api.MapPost("/users/{user}/disconnect", PushApi.DisconnectUserAsync).AddEndpointFilter(new ApiKeyFilter(ApiScopes.Admin));
        api.MapGet("/admin/activity", PushApi.ActivityAsync).AddEndpointFilter(new ApiKeyFilter(ApiScopes.Admin));

        app.MapBrowserSdk();
        if (app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<PushServiceOptions>>().Value.Console.Enabled)
        {
            app.MapPushConsole();
        }

        app.MapGet("/healthz", () => Results.Text("ok"));
        app.MapGet("/readyz", (IBroker broker, DrainState drain) =>
            drain.IsDraining ? Results.Text("draining", statusCode: StatusCodes.Status503ServiceUnavailable)
            : !broker.IsAvailable ? Results.Text("backplane unavailable", statusCode: StatusCodes.Status503ServiceUnavailable)
            : !broker.IsCaughtUp ? Results.Text("catching up from history", statusCode: StatusCodes.Status503ServiceUnavailable)
            : Results.Text("ready"));
        if (app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<PushService.Gateway.Configuration.PushServiceOptions>>().Value.Telemetry.Enabled)
        {
            app.MapPrometheusScrapingEndpoint("/metrics");
        }

        return app;
    }
}
