namespace PushService.Pushctl;

/// <summary>What pushctl's exit code tells a script (README.md lists them).</summary>
internal static class ExitCodes
{
    /// <summary>Done.</summary>
    public const int Ok = 0;

    /// <summary>It ran but did not succeed: messages lost in a bench, a tail that timed out, an unexpected failure.</summary>
    public const int Failed = 1;

    /// <summary>Bad usage or input: an unknown option, a bad channel name, data that is not JSON. Nothing was sent.</summary>
    public const int BadInput = 2;

    /// <summary>Refused: no API key, a wrong one, one without the scope, an invalid or expired token (401, 403).</summary>
    public const int Refused = 3;

    /// <summary>Not found: an unconfigured namespace, presence off for the channel (404).</summary>
    public const int NotFound = 4;

    /// <summary>Unavailable: the gateway cannot be reached, or answered 503 or 429 (try again later).</summary>
    public const int Unavailable = 5;

    /// <summary>The exit code for an HTTP status the gateway answered with.</summary>
    public static int ForStatus(int status) => status switch
    {
        400 or 409 or 413 => BadInput,
        401 or 403 => Refused,
        404 => NotFound,
        429 or 502 or 503 or 504 => Unavailable,
        _ => Failed,
    };

    /// <summary>The exit code for a refusal of the WebSocket protocol (its error codes, docs/protocol.md).</summary>
    public static int ForProtocolError(string code) => code switch
    {
        "bad_request" or "limit_exceeded" or "already_subscribed" => BadInput,
        "unauthorized" or "permission_denied" => Refused,
        "not_found" => NotFound,
        "unavailable" or "rate_limited" => Unavailable,
        _ => Failed,
    };
}

/// <summary>A failure to report in one line on standard error, with the exit code it stands for.</summary>
internal sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
