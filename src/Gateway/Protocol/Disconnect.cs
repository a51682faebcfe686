namespace PushService.Gateway.Protocol;

/// <summary>
/// Why the server closes a connection: the WebSocket close code, a short reason, and whether the SDK should
/// reconnect. Every code the gateway uses is named here (contract section 1.3 plus our extensions).
/// </summary>
/// <param name="Code">The WebSocket close code.</param>
/// <param name="Reason">A short machine-readable reason, also the close frame's description.</param>
/// <param name="Reconnect">Whether the client should reconnect.</param>
public sealed record Disconnect(int Code, string Reason, bool Reconnect)
{
    /// <summary>Normal close; the server-side disconnect of a user without reconnect.</summary>
    public static readonly Disconnect Normal = new(1000, "normal", false);

    /// <summary>The node is draining or stopping, or the server asked the client to reconnect elsewhere.</summary>
    public static readonly Disconnect GoingAway = new(1001, "going_away", true);

    /// <summary>A frame RFC 6455 forbids (unmasked, reserved bits, a bad opcode or control frame).</summary>
    public static readonly Disconnect ProtocolError = new(1002, "protocol_error", false);

    /// <summary>A text message that is not UTF-8 (RFC 6455 section 8.1).</summary>
    public static readonly Disconnect InvalidPayload = new(1007, "invalid_utf8", false);

    /// <summary>A malformed or unknown command.</summary>
    public static readonly Disconnect BadRequest = new(4000, "bad_request", false);

    /// <summary>A bad, missing or expired token, or no <c>connect</c> first.</summary>
    public static readonly Disconnect Unauthorized = new(4001, "unauthorized", false);

    /// <summary>The connection token expired and was not refreshed in time.</summary>
    public static readonly Disconnect TokenExpired = new(4001, "token_expired", false);

    /// <summary>Not allowed.</summary>
    public static readonly Disconnect Forbidden = new(4003, "forbidden", false);

    /// <summary>A client message over the size limit.</summary>
    public static readonly Disconnect MessageTooLarge = new(4009, "message_too_large", false);

    /// <summary>Extension: the client did not answer a server ping in time.</summary>
    public static readonly Disconnect NoPong = new(4010, "no_pong", true);

    /// <summary>Too many commands.</summary>
    public static readonly Disconnect RateLimited = new(4029, "rate_limited", true);

    /// <summary>The client's outbound queue overflowed.</summary>
    public static readonly Disconnect SlowConsumer = new(4500, "slow_consumer", true);

    /// <summary>The node cannot serve now.</summary>
    public static readonly Disconnect Unavailable = new(4503, "unavailable", true);
}
