using System.Net;

namespace PushService.Broker.Redis.Resp;

/// <summary>
/// The one Redis server the broker's own connections talk to, and how they open a session on it: the credentials, the
/// database commands run in, and the name the connection gives itself.
/// </summary>
internal sealed record RespServer(EndPoint EndPoint, string? User, string? Password, int? Database, string ClientName)
{
    /// <summary>How the logs name the server.</summary>
    public string Name { get; } = EndPoint.ToString() ?? "?";
}
