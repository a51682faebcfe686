using PushService.Broker;

namespace PushService.Gateway.Protocol;

/// <summary>The command ops of contract v1.</summary>
public enum CommandOp
{
    /// <summary>Not a known op.</summary>
    Unknown,

    /// <summary><c>connect</c></summary>
    Connect,

    /// <summary><c>subscribe</c></summary>
    Subscribe,

    /// <summary><c>unsubscribe</c></summary>
    Unsubscribe,

    /// <summary><c>publish</c></summary>
    Publish,

    /// <summary><c>history</c></summary>
    History,

    /// <summary><c>presence</c></summary>
    Presence,

    /// <summary><c>ping</c></summary>
    Ping,

    /// <summary><c>pong</c>, the answer to a server ping; it has no id and gets no reply.</summary>
    Pong,

    /// <summary><c>refresh</c> (extension): a new connection token for the same connection, before the old one expires.</summary>
    Refresh,
}

/// <summary>One decoded client command. Fields a command does not use stay null.</summary>
public sealed class Command
{
    /// <summary>The op.</summary>
    public CommandOp Op { get; set; }

    /// <summary>The client-chosen id that the reply carries; 0 for <c>pong</c>.</summary>
    public long Id { get; set; }

    /// <summary><c>channel</c></summary>
    public string? Channel { get; set; }

    /// <summary><c>token</c></summary>
    public string? Token { get; set; }

    /// <summary><c>name</c> of the client application.</summary>
    public string? Name { get; set; }

    /// <summary><c>version</c> of the client application.</summary>
    public string? Version { get; set; }

    /// <summary><c>since</c>: the position to recover after.</summary>
    public StreamPosition? Since { get; set; }

    /// <summary><c>limit</c> of a history read.</summary>
    public int? Limit { get; set; }

    /// <summary>The raw <c>data</c> JSON value, with raw line breaks turned into spaces.</summary>
    public byte[]? Data { get; set; }

    /// <summary>Set when a field is malformed: the command gets a <c>bad_request</c> reply with this message.</summary>
    public string? FieldError { get; set; }
}
