using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using PushService.Broker;
using PushService.Gateway.Api;
using PushService.Gateway.Configuration;
using PushService.Gateway.Connections;
using PushService.Gateway.Sdk;
using PushService.Gateway.WebConsole;
using Microsoft.Extensions.Hosting;
using Scalar.AspNetCore;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the gateway's endpoints.</summary>
public static class PushEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps <c>/ws</c>, <c>/sse</c>, the REST API under <c>/api/v1</c>, <c>/sdk/push.js</c>, the web console at <c>/console</c>,
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
        var events = app.Services.GetRequiredService<SseEndpoint>();
        app.MapGet(SseEndpoint.Path, (RequestDelegate)events.HandleAsync);
        app.MapMethods(SseEndpoint.Path, [HttpMethods.Options], (RequestDelegate)events.PreflightAsync);

        app.MapPushApi(app.Services.GetRequiredService<PushService.Gateway.Telemetry.PushMetrics>());

        // The REST API's OpenAPI document, for client generators and the reference page; in Development that page
        // (Scalar, served from the gateway itself) is at /docs.
        app.MapOpenApi(ApiDocument.Path);
        if (app.Environment.IsDevelopment())
        {
            // Its fonts would come from Scalar's site: the page uses the browser's own, so it needs nothing outside the gateway.
            app.MapScalarApiReference("/docs", options => options.WithTitle("PushService REST API").WithOpenApiRoutePattern(ApiDocument.Path)
                .DisableDefaultFonts());
        }

        app.MapBrowserSdk().ExcludeFromDescription();
        if (app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<PushServiceOptions>>().Value.Console.Enabled)
        {
            app.MapPushConsole();
        }

        app.MapGet("/healthz", () => Results.Text("ok"))
            .WithName("Health").WithTags("Operations").WithSummary("Is the process alive").Produces<string>(contentType: "text/plain");
        app.MapGet("/readyz", (IBroker broker, DrainState drain) =>
            drain.IsDraining ? Results.Text("draining", statusCode: StatusCodes.Status503ServiceUnavailable)
            : !broker.IsAvailable ? Results.Text("backplane unavailable", statusCode: StatusCodes.Status503ServiceUnavailable)
            : !broker.IsCaughtUp ? Results.Text("catching up from history", statusCode: StatusCodes.Status503ServiceUnavailable)
            : Results.Text("ready"))
            .WithName("Ready").WithTags("Operations").WithSummary("Is the node ready for traffic")
            .WithDescription("200 'ready' when the backplane is reachable, every subscribed channel has caught up after an outage and "
                + "the node is not draining; 503 with the reason otherwise.")
            .Produces<string>(contentType: "text/plain").Produces<string>(StatusCodes.Status503ServiceUnavailable, "text/plain");
        if (app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<PushService.Gateway.Configuration.PushServiceOptions>>().Value.Telemetry.Enabled)
        {
            app.MapPrometheusScrapingEndpoint("/metrics");
        }

        return app;
    }
}
