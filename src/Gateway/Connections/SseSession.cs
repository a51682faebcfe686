using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using PushService.Gateway.Hub;
using PushService.Gateway.Protocol;
using PushService.Gateway.Transport;

namespace PushService.Gateway.Connections;

/// <summary>
/// One Server-Sent Events stream (<c>GET /sse</c>): a subscriber like a WebSocket's session, with the same writer (the
/// bounded queue whose overflow ends it as a slow consumer, the send loops, the batching), writing events on the HTTP
/// response instead of WebSocket frames (<see cref="SseTransport"/>). It takes no commands: its channels are given when
/// it opens, and it ends when the client goes, the node drains, its user is disconnected, it falls behind, or the
/// server ends one of its channels (the client then resumes from its last event id, on any node).
/// </summary>
internal sealed partial class SseSession : Subscriber, IOpenSession
{
    /// <summary>The heartbeat: a comment, which EventSource ignores and which keeps proxies from closing an idle stream.</summary>
    private static readonly ReadOnlyMemory<byte> Heartbeat = ": ping"u8.ToArray();

    private readonly ConnectionWriter _writer;
    private readonly HttpContext _context;
    private readonly TimeProvider _time;

    public SseSession(HttpContext context, string id, string userId, ConnectionSettings settings, SendScheduler.SendLoop sendLoop, TimeProvider time, ILogger logger)
        : base(id)
    {
        UserId = userId;
        _context = context;
        _time = time;
        Transport = new SseTransport(context.Response.BodyWriter, context.Abort, _ => RequestClose(Disconnect.GoingAway));
        _writer = new ConnectionWriter(Transport, id, settings, sendLoop, time, logger);
    }

    public SseTransport Transport { get; }

    public override Outbox Outbox => _writer;

    public bool IsConnected => true;

    public OutboundQueue Queue => _writer.Queue;

    /// <summary>Why the server ended the stream, when it did.</summary>
    public Disconnect? ClosedWith => _writer.ClosedWith;

    public void RequestClose(Disconnect disconnect) => _writer.RequestClose(disconnect, flushHere: false);

    public void Abort() => _writer.Abort();

    /// <summary>
    /// Keeps the stream until it ends: a heartbeat comment every <paramref name="heartbeat"/>, and at once when the
    /// client goes away (the response is aborted, and with it anything still queued). A stream the server is closing
    /// whose client reads nothing (so the closing event never gets out) is aborted at the first heartbeat after
    /// <paramref name="closeTimeout"/>, as a WebSocket's close is.
    /// </summary>
    public async Task RunAsync(TimeSpan heartbeat, TimeSpan closeTimeout)
    {
        using var timer = new PeriodicTimer(heartbeat, _time);
        var gone = _context.RequestAborted;
        var done = _writer.Done;
        while (!done.IsCompleted)
        {
            try
            {
                var tick = timer.WaitForNextTickAsync(gone).AsTask();
                if (await Task.WhenAny(tick, done) != tick || !await tick)
                {
                    continue;
                }

                if (_writer.IsClosing && _time.GetUtcNow().UtcTicks - _writer.CloseRequestedAtTicks > closeTimeout.Ticks)
                {
                    _writer.Abort();
                    break;
                }

                _writer.SendControl(Heartbeat);
            }
            catch (OperationCanceledException)
            {
                _writer.Abort();
                break;
            }
        }
    }
}
