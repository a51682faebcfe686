using Microsoft.AspNetCore.Http;
using PushService.Gateway.Configuration;
using PushService.Gateway.Telemetry;

namespace PushService.Gateway.Api;

/// <summary>
/// Maps the REST API under <c>/api/v1</c>, each endpoint with its API-key scope and what the OpenAPI document says of it
/// (summary, body, answers, problems, an example), so the document is made from the endpoints actually mapped.
/// </summary>
internal static class PushApiEndpoints
{
    public const string Prefix = "/api/v1";

    private const string Publishing = "Publishing";
    private const string Reading = "Channels";
    private const string Cluster = "Cluster";

    public static void MapPushApi(this IEndpointRouteBuilder endpoints, PushMetrics metrics)
    {
        var api = endpoints.MapGroup(Prefix);
        api.AddEndpointFilter(new ApiRejectionFilter(metrics));

        api.MapPost("/channels/{channel}/messages", PushApi.PublishAsync)
            .RequireApiScope(ApiScopes.Publish)
            .RequireRateLimiting(PushRateLimits.Publish)
            .Describe("Publish", Publishing, "Publish to a channel",
                "Stores the publication in the channel's history (where its namespace keeps one) and hands it to every node, "
                + "which pushes it to the channel's subscribers. A 200 means it is stored and on its way; with the backplane down "
                + "the answer is 503 with Retry-After, never a silent 200.")
            .Body<PublishRequest>(required: true)
            .Produces<PublishResponse>()
            .Problems(400, 404, 409, 413, 429, 503)
            .WithMetadata(new ApiExample(
                """{"data":{"headline":"hello"},"idempotencyKey":"order-1042-shipped"}""",
                """{"channel":"news","epoch":"k2x7qv4a","offset":42}"""));

        api.MapPost("/broadcast", PushApi.BroadcastAsync)
            .RequireApiScope(ApiScopes.Publish)
            .RequireRateLimiting(PushRateLimits.Publish)
            .Describe("Broadcast", Publishing, "Publish to many channels",
                "Publishes the same data to every channel given. Every name is checked before any is published; if the "
                + "backplane fails midway the 503 says how many were published, and a retry with the same idempotency key "
                + "completes the rest without duplicates.")
            .Body<BroadcastRequest>(required: true)
            .Produces<BroadcastResponse>()
            .Problems(400, 404, 409, 413, 429, 503)
            .WithMetadata(new ApiExample(
                """{"channels":["news","sports"],"data":{"headline":"hello"}}""",
                """{"results":[{"channel":"news","epoch":"k2x7qv4a","offset":42},{"channel":"sports","epoch":"p0m3zz81","offset":7}]}"""));

        api.MapGet("/channels/{channel}/history", PushApi.HistoryAsync)
            .RequireApiScope(ApiScopes.Read)
            .Describe("History", Reading, "Read a channel's history",
                "The publications after 'since' in the epoch 'epoch' (the current epoch when none is given; another epoch "
                + "returns none), or the newest, at most 'limit' (PushService:Limits:MaxHistoryLimit at most), in offset order.")
            .Produces<HistoryResponse>()
            .Problems(400, 404, 503)
            .WithMetadata(new ApiExample(null, """{"epoch":"k2x7qv4a","offset":42,"messages":[{"offset":41,"data":{"headline":"hi"}},{"offset":42,"data":{"headline":"hello"}}]}"""));

        api.MapGet("/channels/{channel}/presence", PushApi.PresenceAsync)
            .RequireApiScope(ApiScopes.Read)
            .Describe("Presence", Reading, "Who is in a channel",
                "The clients subscribed to the channel on every node, where the channel's namespace keeps presence (404 otherwise).")
            .Produces<PresenceResponse>()
            .Problems(400, 404, 503)
            .WithMetadata(new ApiExample(null, """{"clients":[{"client":"c7f3a1","user":"42"},{"client":"9b20de","user":""}]}"""));

        api.MapGet("/channels", PushApi.ChannelsAsync)
            .RequireApiScope(ApiScopes.Read)
            .Describe("Channels", Cluster, "Channels with subscribers",
                "Every channel with subscribers on any node, with their number across the cluster (as of each node's last heartbeat).")
            .Produces<ChannelsResponse>()
            .Problems(503)
            .WithMetadata(new ApiExample(null, """{"channels":[{"channel":"news","subscribers":1520},{"channel":"chat:lobby","subscribers":12}]}"""));

        api.MapGet("/info", PushApi.InfoAsync)
            .RequireApiScope(ApiScopes.Read)
            .Describe("Info", Cluster, "The nodes of the cluster",
                "Every live node with its connections, subscriptions and uptime: the answering node's own numbers exactly, the "
                + "others' as of their last heartbeat.")
            .Produces<InfoResponse>()
            .Problems(503)
            .WithMetadata(new ApiExample(null, """{"nodes":[{"node":"gw-1","connections":5021,"subscriptions":5104,"uptimeSeconds":86400}]}"""));

        api.MapPost("/users/{user}/disconnect", PushApi.DisconnectUserAsync)
            .RequireApiScope(ApiScopes.Admin)
            .Describe("DisconnectUser", Cluster, "Disconnect a user everywhere",
                "Closes every connection of the user on every node, with 1001 (reconnect) or 1000 (stop), and says how many there were.")
            .Body<DisconnectRequest>(required: false)
            .Produces<DisconnectResponse>()
            .Problems(400, 413, 503)
            .WithMetadata(new ApiExample("""{"reconnect":false}""", """{"disconnected":2}"""));

        api.MapGet("/admin/activity", PushApi.ActivityAsync)
            .RequireApiScope(ApiScopes.Admin)
            .Describe("Activity", Cluster, "The cluster's last five minutes",
                "Publications and deliveries per second over the last five minutes, added up over the nodes, each node's rates, and "
                + "connections ended by close code: what the web console (/console) shows.")
            .Produces<ActivityResponse>()
            .Problems(503)
            .WithMetadata(new ApiExample(null,
                """{"second":1796566279,"rateSeconds":5,"publications":[0,3,2],"deliveries":[0,300,200],"disconnects":{"1000":4,"4500":1},"nodes":[{"node":"gw-1","publishRate":2.4,"deliveryRate":240,"disconnects":{"1000":4,"4500":1}}]}"""));
    }

    /// <summary>Lets only callers with <paramref name="scope"/> through, and says so in the OpenAPI document.</summary>
    private static RouteHandlerBuilder RequireApiScope(this RouteHandlerBuilder endpoint, string scope) =>
        endpoint.AddEndpointFilter(new ApiKeyFilter(scope)).WithMetadata(new ApiScopeMetadata(scope)).ProducesProblem(401).ProducesProblem(403);

    /// <summary>
    /// Documents a JSON request body. Not <c>Accepts</c>: its metadata has routing refuse other content types with 415,
    /// and the API has always taken its bodies whatever the Content-Type says (and the disconnect body may be absent).
    /// </summary>
    private static RouteHandlerBuilder Body<T>(this RouteHandlerBuilder endpoint, bool required) =>
        endpoint.WithMetadata(new ApiRequestBody(typeof(T), required));

    private static RouteHandlerBuilder Describe(this RouteHandlerBuilder endpoint, string name, string tag, string summary, string description) =>
        endpoint.WithName(name).WithTags(tag).WithSummary(summary).WithDescription(description);

    private static RouteHandlerBuilder Problems(this RouteHandlerBuilder endpoint, params int[] statuses)
    {
        foreach (var status in statuses)
        {
            endpoint.ProducesProblem(status);
        }

        return endpoint;
    }
}

/// <summary>The API-key scope an endpoint needs (<c>admin</c> may do everything).</summary>
internal sealed record ApiScopeMetadata(string Scope);

/// <summary>The JSON request body an endpoint reads, for the OpenAPI document.</summary>
internal sealed record ApiRequestBody(Type Type, bool Required);

/// <summary>An example request body (null for none) and 200 answer, for the OpenAPI document.</summary>
internal sealed record ApiExample(string? Request, string Response);
