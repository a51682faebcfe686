using System.Text.Json;

namespace PushService.Client;

/// <summary>What a subscription yields.</summary>
public enum ChannelEventKind
{
    /// <summary>A publication, in offset order, each exactly once.</summary>
    Message,

    /// <summary>
    /// Continuity was lost: the channel's history no longer holds everything missed (or its epoch changed). The
    /// application should re-sync its state by other means; messages continue after this event.
    /// </summary>
    Reset,

    /// <summary>A client joined the channel (where the namespace pushes join and leave).</summary>
    Join,

    /// <summary>A client left the channel.</summary>
    Leave,
}

/// <summary>One event of a subscription.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="Channel">The channel.</param>
/// <param name="Epoch">The channel's epoch.</param>
/// <param name="Offset">The publication's offset (messages), or the position after a reset.</param>
/// <param name="Data">The published JSON value (messages), or <c>{"client","user"}</c> (join and leave).</param>
public sealed record ChannelEvent(ChannelEventKind Kind, string Channel, string Epoch, long Offset, JsonElement Data);

/// <summary>An error reply from the gateway.</summary>
public sealed class PushCommandException : Exception
{
    /// <summary>Creates the exception.</summary>
    public PushCommandException(string code, string message) : base($"{code}: {message}") => Code = code;

    /// <summary>Creates the exception.</summary>
    public PushCommandException() : base("The command failed.") => Code = "internal";

    /// <summary>Creates the exception.</summary>
    public PushCommandException(string message) : base(message) => Code = "internal";

    /// <summary>Creates the exception.</summary>
    public PushCommandException(string message, Exception innerException) : base(message, innerException) => Code = "internal";

    /// <summary>The protocol error code, such as <c>permission_denied</c>.</summary>
    public string Code { get; }
}
