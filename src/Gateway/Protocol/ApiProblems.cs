using Microsoft.AspNetCore.Http;

namespace PushService.Gateway.Protocol;

/// <summary>The RFC 9457 problem details the REST API answers with.</summary>
internal static class ApiProblems
{
    public static IResult BadRequest(string detail) => Problem(StatusCodes.Status400BadRequest, "Bad request", detail);

    public static IResult NotFound(string detail) => Problem(StatusCodes.Status404NotFound, "Not found", detail);

    public static IResult Conflict(string detail) => Problem(StatusCodes.Status409Conflict, "Idempotency key conflict", detail);

    public static IResult TooLarge(int limit) =>
        Problem(StatusCodes.Status413PayloadTooLarge, "Body too large", $"The body is larger than PushService:Limits:MaxMessageBytes ({limit} bytes).");

    public static IResult Unavailable(TimeSpan retryAfter, string detail) =>
        RetryLater(StatusCodes.Status503ServiceUnavailable, "Backplane unavailable", retryAfter, detail);

    /// <summary>A problem with <c>Retry-After</c>: a rate limit (429) or a node that cannot take the request now (503).</summary>
    public static IResult RetryLater(int status, string title, TimeSpan retryAfter, string detail) =>
        new RetryAfterResult(Problem(status, title, detail), retryAfter);

    /// <summary>A node that is shutting down refuses new connections (a WebSocket upgrade, an event stream).</summary>
    public static IResult Draining() =>
        RetryLater(StatusCodes.Status503ServiceUnavailable, "Node is draining", TimeSpan.FromSeconds(1), "This node is shutting down; connect to another node.");

    /// <summary>A node at <c>Limits:MaxConnections</c> refuses new connections.</summary>
    public static IResult NodeFull() =>
        RetryLater(StatusCodes.Status503ServiceUnavailable, "Node is full", TimeSpan.FromSeconds(5),
            "This node holds PushService:Limits:MaxConnections connections; connect to another node.");

    /// <summary>A browser page whose origin is not allowed to connect.</summary>
    public static IResult OriginNotAllowed() =>
        Problem(StatusCodes.Status403Forbidden, "Origin not allowed", "The Origin of this request is not in PushService:WebSocket:AllowedOrigins.");

    public static IResult Unauthorized(string detail) => Problem(StatusCodes.Status401Unauthorized, "Unauthorized", detail);

    public static IResult Forbidden(string detail) => Problem(StatusCodes.Status403Forbidden, "Forbidden", detail);

    private static IResult Problem(int status, string title, string detail) => Results.Problem(statusCode: status, title: title, detail: detail);

    /// <summary>Adds <c>Retry-After</c> (whole seconds, at least one) to another result.</summary>
    private sealed class RetryAfterResult(IResult inner, TimeSpan retryAfter) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return inner.ExecuteAsync(httpContext);
        }
    }
}
