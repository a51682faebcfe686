using System.Net;

namespace PushService.Broker.Redis.Resp;

/// <summary>
/// The one Redis server the broker's own connections talk to, and how they open a session on it: the credentials, the
/// database commands run in, and the name the connection gives itself. It also tells each connection that waits to try
/// again when another one reached the server (<see cref="Reached"/>).
/// </summary>
internal sealed class RespServer(EndPoint endPoint, string? user, string? password, int? database, string clientName)
{
    private TaskCompletionSource _reached = NewSignal();

    public EndPoint EndPoint { get; } = endPoint;

    public string? User { get; } = user;

    public string? Password { get; } = password;

    public int? Database { get; } = database;

    public string ClientName { get; } = clientName;

    /// <summary>How the logs name the server.</summary>
    public string Name { get; } = endPoint.ToString() ?? "?";

    /// <summary>Completes the next time a connection reaches the server (<see cref="SignalReached"/>).</summary>
    public Task Reached => Volatile.Read(ref _reached).Task;

    /// <summary>
    /// Says a connection reached the server: one of the broker's own, or the library's multiplexer. The broker's
    /// connections that wait to try again (<see cref="RespSocket.RetryAsync"/>) try at once. Each keeps its own backoff
    /// otherwise (250 ms growing to 2 s), so after a Redis restart publishes could go through one connection for up to
    /// two seconds while the node's pub/sub connection still waited: two seconds of publications that the node's
    /// subscribers then had to get back from history, and that a busy channel's history may no longer hold.
    /// </summary>
    public void SignalReached() => Interlocked.Exchange(ref _reached, NewSignal()).TrySetResult();

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
