using System.IO.Pipelines;
using Microsoft.Extensions.Logging;
using PushService.Gateway.Hub;
using PushService.Gateway.Protocol;
using PushService.Gateway.Telemetry;
using PushService.Gateway.Transport;

namespace PushService.Gateway.Connections;

/// <summary>
/// One client's session: who it is once connected, its subscriptions, its command budget and its liveness (pings,
/// token expiry). Client messages come from its transport's receive loop (<see cref="WebSocketTransport"/>) and go to
/// the <see cref="CommandHandler"/>; what it sends goes through its <see cref="ConnectionWriter"/>.
/// </summary>
internal sealed partial class ClientConnection : Subscriber, IWebSocketSession, IOpenSession
{
    private readonly ConnectionWriter _writer;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Func<ClientConnection, ReadOnlyMemory<byte>, ValueTask> _handleMessage;
    private long _lastActivityTicks;
    private long _pingSentAtTicks;

    /// <summary>Wraps an upgraded connection; <paramref name="pipe"/> carries client frames in and server frames out,
    /// <paramref name="abort"/>, called with <paramref name="abortState"/>, ends the underlying connection at once, and
    /// <paramref name="handleMessage"/> handles each client message.</summary>
    public ClientConnection(IDuplexPipe pipe, Action<object> abort, object abortState, string id, ConnectionSettings settings, SendScheduler.SendLoop sendLoop,
        Func<ClientConnection, ReadOnlyMemory<byte>, ValueTask> handleMessage, TimeProvider time, ILogger logger)
        : base(id)
    {
        MaxMessageBytes = settings.MaxMessageBytes;
        _handleMessage = handleMessage;
        Transport = new WebSocketTransport(pipe, abort, abortState);
        _writer = new ConnectionWriter(Transport, id, settings, sendLoop, time, logger);
        _time = time;
        _logger = logger;
        OpenedAtTicks = time.GetUtcNow().UtcTicks;
        _lastActivityTicks = OpenedAtTicks;
    }

    /// <summary>The WebSocket framing under this session.</summary>
    public WebSocketTransport Transport { get; }

    /// <summary>The largest client message the session takes, in bytes.</summary>
    public int MaxMessageBytes { get; }

    public string? ClientName { get; private set; }

    public string? ClientVersion { get; private set; }

    public bool IsConnected { get; private set; }

    public long OpenedAtTicks { get; }

    /// <summary>
    /// Where in the second half of the first ping interval this connection's first ping falls, from 0 (at its end) to 1
    /// (at its middle); drawn at random, so connections opened together are not all pinged, nor all answer, at once.
    /// </summary>
    public float FirstPingLead { get; } = Random.Shared.NextSingle();

    public long LastActivityTicks => Volatile.Read(ref _lastActivityTicks);

    public long PingSentAtTicks => Volatile.Read(ref _pingSentAtTicks);

    public long CloseRequestedAtTicks => _writer.CloseRequestedAtTicks;

    public bool IsClosing => _writer.IsClosing;

    /// <summary>The outbound queue, for the node's gauges and for benchmarks that measure fan-out without a send loop.</summary>
    public OutboundQueue Queue => _writer.Queue;

    /// <summary>Why the server closed the connection, when it did.</summary>
    public Disconnect? ClosedWith => _writer.ClosedWith;

    /// <summary>Who ended the connection: the server unless the client's close frame, or the network, came first.</summary>
    public string ClosedBy { get; private set; } = CloseInitiator.Server;

    /// <summary>The close code the connection ended with, as the metrics report it: the server's, the client's, or 1006.</summary>
    public int CloseCode => ClosedBy switch
    {
        CloseInitiator.Client => Transport.ClientCloseCode,
        CloseInitiator.Network => 1006,
        _ => (ClosedWith ?? Disconnect.Normal).Code,
    };

    public void MarkConnected(string userId, string? name, string? version, DateTimeOffset? expiresAt)
    {
        UserId = userId;
        ClientName = name;
        ClientVersion = version;
        TokenExpiresAtTicks = expiresAt?.UtcTicks ?? 0;
        IsConnected = true;
    }

    /// <summary>When the connection token expires (UTC ticks); 0 when it does not.</summary>
    public long TokenExpiresAtTicks
    {
        get => Volatile.Read(ref _tokenExpiresAtTicks);
        set => Volatile.Write(ref _tokenExpiresAtTicks, value);
    }

    private long _tokenExpiresAtTicks;

    /// <summary>
    /// Commands per second this connection may send, in bursts of up to twice that: a token bucket the heartbeat refills
    /// every second. Two integers rather than a <c>TokenBucketRateLimiter</c>, which costs a few hundred bytes per
    /// connection (its lock and queue) for a budget one thread spends and one refills.
    /// </summary>
    public int CommandsPerSecond
    {
        get => _commandsPerSecond;
        init
        {
            _commandsPerSecond = value;
            _commandTokens = 2 * value;
        }
    }

    private readonly int _commandsPerSecond;
    private int _commandTokens;

    /// <summary>Takes one command from the budget; false when it is spent.</summary>
    public bool TryTakeCommand() => Interlocked.Decrement(ref _commandTokens) >= 0;

    /// <summary>Adds a second's worth of commands, up to the burst.</summary>
    public void ReplenishCommands()
    {
        int current, next;
        do
        {
            current = Volatile.Read(ref _commandTokens);
            next = Math.Min(Math.Max(current, 0) + _commandsPerSecond, 2 * _commandsPerSecond);
        }
        while (Interlocked.CompareExchange(ref _commandTokens, next, current) != current);
    }

    public override Outbox Outbox => _writer;

    /// <inheritdoc cref="ConnectionWriter.Reply"/>
    public void Reply(ReadOnlyMemory<byte> frame) => _writer.Reply(frame);

    public void SendPing()
    {
        Volatile.Write(ref _pingSentAtTicks, _time.GetUtcNow().UtcTicks);
        _writer.SendControl(FrameEncoder.PingPush);
    }

    /// <summary>
    /// Starts closing: what is queued goes out (or, for a slow consumer, is dropped), then a <c>disconnect</c> push and
    /// the close frame. The heartbeat aborts the socket if the close does not finish within the close timeout.
    /// </summary>
    public void RequestClose(Disconnect disconnect) => _writer.RequestClose(disconnect, flushHere: false);

    /// <summary>Ends the connection at once, without a close handshake.</summary>
    public void Abort() => _writer.Abort();

    /// <summary>Runs the connection until it closes: the receive loop on its transport, the sends on its send loop.</summary>
    public Task RunAsync() => Transport.RunAsync(this);

    void IWebSocketSession.OnFrameReceived() => Volatile.Write(ref _lastActivityTicks, _time.GetUtcNow().UtcTicks);

    void IWebSocketSession.OnPingReceived() => _writer.Schedule();

    ValueTask IWebSocketSession.OnMessageAsync(WebSocketOpcode type, ReadOnlyMemory<byte> message, bool tooLarge)
    {
        if (IsClosing)
        {
            // Closing: the transport reads on only to see the client's close frame.
            return ValueTask.CompletedTask;
        }

        if (tooLarge)
        {
            RequestClose(Disconnect.MessageTooLarge);
            return ValueTask.CompletedTask;
        }

        if (type == WebSocketOpcode.Binary)
        {
            RequestClose(Disconnect.BadRequest);
            return ValueTask.CompletedTask;
        }

        return _handleMessage(this, message);
    }

    Task IWebSocketSession.OnReceiveEnded(ReceiveEnd end, string? detail)
    {
        switch (end)
        {
            case ReceiveEnd.ProtocolError:
                Log.ProtocolError(_logger, Id, detail ?? "");
                RequestClose(Disconnect.ProtocolError);
                break;
            case ReceiveEnd.InvalidUtf8:
                RequestClose(Disconnect.InvalidPayload);
                break;
            case ReceiveEnd.NetworkEnded when detail is not null:
                Log.ReceiveEnded(_logger, Id, detail);
                break;
        }

        if (!IsClosing)
        {
            ClosedBy = Transport.CloseReceived ? CloseInitiator.Client : CloseInitiator.Network;
        }

        // Sent from this thread now, as a reply: the close answering the client's, or the last frames before it.
        _writer.RequestClose(Disconnect.Normal, flushHere: true);
        return _writer.Done;
    }

    private static partial class Log
    {
        [LoggerMessage(201, LogLevel.Debug, "Connection {ConnectionId} receive ended: {Message}")]
        public static partial void ReceiveEnded(ILogger logger, string connectionId, string message);

        [LoggerMessage(204, LogLevel.Debug, "Connection {ConnectionId} broke the WebSocket protocol: {Error}")]
        public static partial void ProtocolError(ILogger logger, string connectionId, string error);
    }
}

/// <summary>Per-connection limits, taken once from the options.</summary>
internal readonly record struct ConnectionSettings(long QueueMaxBytes, int QueueMaxMessages, int MaxMessageBytes)
{
    /// <summary>Where the connection reports bytes sent, fan-out latency and slow-consumer closes; none in benchmarks of the bare path.</summary>
    public PushMetrics? Metrics { get; init; }
}

/// <summary>The values of the <c>initiator</c> tag of <c>pushservice.connections.closed</c>.</summary>
internal static class CloseInitiator
{
    public const string Server = "server";
    public const string Client = "client";
    public const string Network = "network";
}
