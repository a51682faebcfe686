using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PushService.Gateway.Configuration;
using PushService.Gateway.Protocol;
using PushService.Gateway.Telemetry;

namespace PushService.Gateway.Api;

/// <summary>
/// REST API authentication: <c>Authorization: Bearer &lt;key&gt;</c> against the configured keys, compared in constant time
/// and never logged. With no keys configured the API is in protected mode and answers only loopback callers.
/// </summary>
internal sealed partial class ApiKeyAuthenticator
{
    private readonly (byte[] Hash, string Name, HashSet<string> Scopes)[] _keys;

    public ApiKeyAuthenticator(IOptions<PushServiceOptions> options, ILogger<ApiKeyAuthenticator> logger)
    {
        _keys = [.. options.Value.Api.Keys.Select((k, i) => (Hash(k.Key), k.Name.Length > 0 ? k.Name : $"key{i}", new HashSet<string>(k.Scopes, StringComparer.Ordinal)))];
        if (_keys.Length == 0)
        {
            Log.ProtectedMode(logger);
        }
    }

    public bool ProtectedMode => _keys.Length == 0;

    /// <summary>Null when the caller may go on, else the problem to answer with.</summary>
    public IResult? Authorize(HttpContext context, string scope)
    {
        if (ProtectedMode)
        {
            var remote = context.Connection.RemoteIpAddress;
            return remote is not null && IPAddress.IsLoopback(remote)
                ? null
                : ApiProblems.Forbidden("No API keys are configured (PushService:Api:Keys), so the REST API answers loopback callers only.");
        }

        var header = context.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || header.Length <= 7)
        {
            return ApiProblems.Unauthorized("Send 'Authorization: Bearer <api key>'.");
        }

        var presented = Hash(header[7..].Trim());
        (byte[] Hash, string Name, HashSet<string> Scopes)? match = null;
        foreach (var key in _keys)
        {
            // Every key is compared, in constant time, so timing tells nothing about which keys exist.
            if (CryptographicOperations.FixedTimeEquals(presented, key.Hash))
            {
                match = key;
            }
        }

        if (match is not { } found)
        {
            return ApiProblems.Unauthorized("The API key is not valid.");
        }

        context.Items[ApiKeyNameItem] = found.Name;
        return found.Scopes.Contains(scope) || found.Scopes.Contains(ApiScopes.Admin)
            ? null
            : ApiProblems.Forbidden($"The API key lacks the '{scope}' scope.");
    }

    public const string ApiKeyNameItem = "PushService.ApiKeyName";

    private static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    private static partial class Log
    {
        [LoggerMessage(600, LogLevel.Warning, "No API keys are configured: the REST API answers loopback callers only (protected mode).")]
        public static partial void ProtectedMode(ILogger logger);
    }
}

/// <summary>Endpoint filter that applies <see cref="ApiKeyAuthenticator"/> with one scope.</summary>
internal sealed class ApiKeyFilter(string scope) : IEndpointFilter
{
    // Not async: the endpoint's own task is passed on as it is, with no state machine of the filter's around it.
    public ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var authenticator = context.HttpContext.RequestServices.GetRequiredService<ApiKeyAuthenticator>();
        return authenticator.Authorize(context.HttpContext, scope) is { } problem ? ValueTask.FromResult<object?>(problem) : next(context);
    }
}

/// <summary>
/// Counts the REST API's refusals by reason in <c>pushservice.rejections</c>: 401 (auth), 403 (permission) and 413
/// (limit) answers of any endpoint of the group. (429s never reach an endpoint: the rate limiter counts those.)
/// </summary>
internal sealed class ApiRejectionFilter(PushMetrics metrics) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var result = await next(context);
        if (RejectionReasons.ForStatusCode((result as IStatusCodeHttpResult)?.StatusCode) is { } reason)
        {
            metrics.Rejected(reason, fromApi: true);
        }

        return result;
    }
}
