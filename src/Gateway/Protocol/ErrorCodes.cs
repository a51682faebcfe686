namespace PushService.Gateway.Protocol;

/// <summary>The error codes of command replies (contract section 1.1).</summary>
public static class ErrorCodes
{
    /// <summary>A field is missing or has the wrong type or value.</summary>
    public const string BadRequest = "bad_request";

    /// <summary>A token is missing, bad or expired.</summary>
    public const string Unauthorized = "unauthorized";

    /// <summary>The client may not do this.</summary>
    public const string PermissionDenied = "permission_denied";

    /// <summary>No such channel namespace, or the thing asked for does not exist.</summary>
    public const string NotFound = "not_found";

    /// <summary>The client is already subscribed to the channel.</summary>
    public const string AlreadySubscribed = "already_subscribed";

    /// <summary>A configured limit was reached.</summary>
    public const string LimitExceeded = "limit_exceeded";

    /// <summary>Too many requests.</summary>
    public const string RateLimited = "rate_limited";

    /// <summary>The backplane cannot serve now; retry.</summary>
    public const string Unavailable = "unavailable";

    /// <summary>An unexpected server error.</summary>
    public const string Internal = "internal";
}
