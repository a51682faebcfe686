using System.IO.Pipelines;
using System.Net;

namespace PushService.Gateway.Transport;

/// <summary>
/// What the direct upgrade path (<see cref="WebSocketConnectionMiddleware"/>) asks of the node's admission: whether an
/// upgrade may go ahead, and a session to run each admitted WebSocket. Connections' endpoint answers.
/// </summary>
internal interface IWebSocketAcceptor
{
    /// <summary>The path WebSockets are upgraded on.</summary>
    string Path { get; }

    /// <summary>
    /// Admits an upgrade when nothing stands in its way, taking a place that <see cref="Release"/> gives back. False
    /// leaves the request to the HTTP pipeline, which checks again and answers with the reason.
    /// </summary>
    bool TryAdmit(UpgradeRequest request, IPAddress? remote);

    /// <summary>The subprotocol to answer <paramref name="request"/> with; null for none.</summary>
    string? SubProtocolFor(UpgradeRequest request);

    /// <summary>A session for an admitted WebSocket on <paramref name="pipe"/>, to be run on its transport and then closed.</summary>
    IWebSocketSession Open(IDuplexPipe pipe, Action<object> abort, object abortState);

    /// <summary>After a session's run ended: it leaves the node.</summary>
    ValueTask CloseAsync(IWebSocketSession session);

    /// <summary>Gives back the place <see cref="TryAdmit"/> took.</summary>
    void Release();
}
