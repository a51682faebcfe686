namespace PushService.Client;

/// <summary>Options of a <see cref="PushClient"/>.</summary>
public sealed class PushClientOptions
{
    /// <summary>Gateway WebSocket endpoints (<c>ws://host/ws</c>); the client tries them in turn and moves on after a failure.</summary>
    public IList<Uri> Endpoints { get; } = [];

    /// <summary>Gives a connection token for each connect attempt; null connects anonymously. Called again after a 4001 close.</summary>
    public Func<CancellationToken, ValueTask<string?>>? TokenProvider { get; set; }

    /// <summary>The application name sent with <c>connect</c>.</summary>
    public string? Name { get; set; }

    /// <summary>The application version sent with <c>connect</c>.</summary>
    public string? Version { get; set; }

    /// <summary>The shortest wait before a reconnect.</summary>
    /// <value>The default value is 100 ms.</value>
    public TimeSpan MinReconnectDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest wait before a reconnect.</summary>
    /// <value>The default value is 10 seconds.</value>
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a command waits for its reply.</summary>
    /// <value>The default value is 10 seconds.</value>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(10);
}
