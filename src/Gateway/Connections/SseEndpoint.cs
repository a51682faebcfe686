using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PushService.Broker;
using PushService.Gateway.Auth;
using PushService.Gateway.Configuration;
using PushService.Gateway.Hub;
using PushService.Gateway.Protocol;
using PushService.Gateway.Telemetry;
using PushService.Gateway.Transport;

namespace PushService.Gateway.Connections;

/// <summary>
/// Serves <c>GET /sse?channel=a&amp;channel=b</c>: pushes as Server-Sent Events, for clients behind proxies that break
/// WebSockets. The channels are checked as a WebSocket's subscribes are (namespace, user-limited channels, anonymous
/// access), the token comes in the <c>Authorization</c> header or, for a browser's EventSource, which cannot set headers,
/// as a short-lived <c>token</c> in the address. <c>Last-Event-ID</c> (or <c>lastEventId</c> in the address) resumes
/// every channel where the client's last event left it, on any node: what it missed comes first, from history, or a
/// <c>reset</c> event says history no longer holds it. Refusals are problem details, before the stream starts.
/// </summary>
internal sealed partial class SseEndpoint
{
    public const string Path = "/sse";

    /// <summary>The response header naming the node that serves a stream.</summary>
    public const string NodeHeader = "X-PushService-Node";

    private readonly LocalHub _hub;
    private readonly ConnectionRegistry _connections;
    private readonly SendScheduler _sendScheduler;
    private readonly TokenValidator _tokens;
    private readonly DrainState _drain;
    private readonly PushMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly PushServiceOptions _options;
    private readonly ConnectionSettings _settings;
    private readonly ILogger<SseSession> _sessionLogger;
    private readonly ILogger<SseEndpoint> _logger;
    private readonly string _nodeId;
    private readonly ChannelAccess _access;

    public SseEndpoint(LocalHub hub, ConnectionRegistry connections, SendScheduler sendScheduler, TokenValidator tokens, NamespaceResolver namespaces,
        DrainState drain, PushMetrics metrics, TimeProvider time, IOptions<PushServiceOptions> options, NodeIdentity node, ILogger<SseSession> sessionLogger,
        ILogger<SseEndpoint> logger)
    {
        _nodeId = node.Id;
        _access = new ChannelAccess(namespaces, tokens);
        _hub = hub;
        _connections = connections;
        _sendScheduler = sendScheduler;
        _tokens = tokens;
        _drain = drain;
        _metrics = metrics;
        _time = time;
        _options = options.Value;
        _settings = new ConnectionSettings(_options.Limits.ClientQueueMaxBytes, _options.Limits.ClientQueueMaxMessages, _options.Limits.MaxMessageBytes)
        {
            Metrics = metrics,
        };
        _sessionLogger = sessionLogger;
        _logger = logger;
    }

    /// <summary>
    /// Answers a CORS preflight: a page on an allowed origin that reads the stream with fetch sends the token in
    /// <c>Authorization</c> and its position in <c>Last-Event-ID</c>, which browsers ask about first.
    /// </summary>
    public async Task PreflightAsync(HttpContext context)
    {
        var origin = context.Request.Headers.Origin.ToString();
        if (origin.Length == 0 || !OriginPolicy.IsAllowed(origin, context.Request.Host.Value, _options.WebSocket))
        {
            _metrics.Rejected(RejectionReasons.Origin, fromApi: false);
            await ApiProblems.OriginNotAllowed().ExecuteAsync(context);
            return;
        }

        var headers = context.Response.Headers;
        headers.AccessControlAllowOrigin = origin;
        headers.AccessControlAllowMethods = "GET";
        headers.AccessControlAllowHeaders = "Authorization, Last-Event-ID, Accept, Cache-Control";
        headers.AccessControlMaxAge = "600";
        headers.Vary = "Origin";
        context.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    public async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var origin = request.Headers.Origin.ToString();
        if (!OriginPolicy.IsAllowed(origin, request.Host.Value, _options.WebSocket))
        {
            _metrics.Rejected(RejectionReasons.Origin, fromApi: false);
            await ApiProblems.OriginNotAllowed().ExecuteAsync(context);
            return;
        }

        if (origin.Length > 0)
        {
            // EventSource and fetch read a stream with CORS: an allowed page on another origin must be told so.
            context.Response.Headers.AccessControlAllowOrigin = origin;
            context.Response.Headers.AccessControlExposeHeaders = NodeHeader;
            context.Response.Headers.Vary = "Origin";
        }

        if (_drain.IsDraining)
        {
            await ApiProblems.Draining().ExecuteAsync(context);
            return;
        }

        var channels = request.Query["channel"].Where(c => !string.IsNullOrEmpty(c)).Select(c => c!).Distinct(StringComparer.Ordinal).ToList();
        if (channels.Count == 0)
        {
            await Problem(context, StatusCodes.Status400BadRequest, "No channel", "Name the channels to stream: /sse?channel=a&channel=b.");
            return;
        }

        if (channels.Count > _options.Limits.MaxChannelsPerConnection)
        {
            _metrics.Rejected(RejectionReasons.Limit, fromApi: false);
            await Problem(context, StatusCodes.Status400BadRequest, "Too many channels",
                $"A stream may hold at most {_options.Limits.MaxChannelsPerConnection} channels (PushService:Limits:MaxChannelsPerConnection).");
            return;
        }

        var (user, refusal) = await AuthenticateAsync(request);
        if (refusal is not null)
        {
            _metrics.Rejected(RejectionReasons.Auth, fromApi: false);
            await Problem(context, StatusCodes.Status401Unauthorized, "Unauthorized", refusal);
            return;
        }

        var namespaces = new List<NamespaceOptions>(channels.Count);
        foreach (var channel in channels)
        {
            if (Authorize(channel, user, out var ns) is { } problem)
            {
                if (problem.Status == StatusCodes.Status403Forbidden)
                {
                    _metrics.Rejected(RejectionReasons.Permission, fromApi: false);
                }

                await Problem(context, problem.Status, problem.Title, problem.Detail);
                return;
            }

            namespaces.Add(ns!);
        }

        // Streams and WebSockets share the node's places.
        if (!_connections.TryTakePlace(_options.Limits.MaxConnections))
        {
            _metrics.Rejected(RejectionReasons.Limit, fromApi: false);
            await ApiProblems.NodeFull().ExecuteAsync(context);
            return;
        }

        try
        {
            if (user.Length > 0 && !_connections.Users.TryTake(user, _options.Limits.MaxConnectionsPerUser))
            {
                _metrics.Rejected(RejectionReasons.Limit, fromApi: false);
                await Problem(context, StatusCodes.Status403Forbidden, "Too many connections",
                    $"User has {_options.Limits.MaxConnectionsPerUser} connections on this node already (PushService:Limits:MaxConnectionsPerUser).");
                return;
            }

            await StreamAsync(context, user, channels, namespaces);
        }
        finally
        {
            _connections.ReleasePlace();
        }
    }

    private async Task StreamAsync(HttpContext context, string user, List<string> channels, List<NamespaceOptions> namespaces)
    {
        var lastEventId = context.Request.Headers["Last-Event-ID"].ToString() is { Length: > 0 } header ? header : context.Request.Query["lastEventId"].ToString();
        // An id that is not one of ours (or mangled) resumes nothing: each channel starts from now.
        _ = SseEventId.TryParse(lastEventId, out var resumeFrom);

        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache, no-transform";
        response.Headers[NodeHeader] = _nodeId;

        // nginx buffers responses by default; this tells it not to, for this response only.
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();

        var session = new SseSession(context, Guid.NewGuid().ToString("N"), user, _settings, _sendScheduler.Assign(), _time, _sessionLogger);
        try
        {
            // The headers go out first (the body writer takes writes once the response has started), before the stream is
            // registered: until then nothing else (a drain, a disconnect) may write to it.
            await response.StartAsync(context.RequestAborted);
            session.Transport.Resume(resumeFrom.Where(p => channels.Contains(p.Key)));
            session.Transport.WriteRetry(_options.Sse.Retry);
            await response.BodyWriter.FlushAsync(context.RequestAborted);
        }
        catch
        {
            // The client went before its stream began: the user's slot taken for it goes back.
            if (user.Length > 0)
            {
                _connections.Users.Release(user);
            }

            throw;
        }

        _connections.Add(session);
        _metrics.ConnectionOpened();
        Log.Opened(_logger, session.Id, user, channels.Count, resumeFrom.Count > 0);
        try
        {
            for (var i = 0; i < channels.Count; i++)
            {
                var since = resumeFrom.TryGetValue(channels[i], out var at) ? new StreamPosition(at.Offset, at.Epoch) : (StreamPosition?)null;
                await SubscribeAsync(session, channels[i], namespaces[i], since);
            }

            await session.RunAsync(_options.WebSocket.PingInterval, _options.Limits.CloseTimeout);
        }
        catch (BrokerUnavailableException)
        {
            // The backplane is down: the client comes back (EventSource by itself) and resumes from its last id.
            session.RequestClose(Disconnect.Unavailable);
            await session.RunAsync(_options.WebSocket.PingInterval, _options.Limits.CloseTimeout);
        }
        finally
        {
            // Once this returns the response is over: no flush still on its way may write to it.
            session.Transport.End();
            await _hub.Subscriptions.EndAllAsync(session);
            _connections.Remove(session);
            var disconnect = session.ClosedWith;
            _metrics.ConnectionClosed(disconnect?.Code ?? 1006, disconnect is null ? CloseInitiator.Network : CloseInitiator.Server);
        }
    }

    /// <summary>
    /// Subscribes one channel: what was missed since <paramref name="since"/> first (or a <c>reset</c> event when history
    /// no longer holds it), then a <c>subscribed</c> event with the position, then live pushes, with nothing between.
    /// </summary>
    private async Task SubscribeAsync(SseSession session, string channel, NamespaceOptions ns, StreamPosition? since)
    {
        var (subscription, history) = await _hub.Subscriptions.StartAsync(session, channel, ns, since, expiresAtTicks: 0);
        var recovered = since is { } s && history.IsCompleteSince(s);
        if (since is not null)
        {
            _metrics.Recovered(recovered);
        }

        // The subscribed event comes first and says where what follows starts: after the client's position when what it
        // missed is recovered (the missed messages follow it, each moving the stream's id on), else after the channel's
        // position now, with a reset event before it when the client asked to resume and history no longer could.
        var events = new List<byte[]>(history.Publications.Count + 2);
        if (since is not null && !recovered)
        {
            events.Add(FrameEncoder.StreamReset(channel, history.Position));
        }

        events.Add(FrameEncoder.StreamSubscribed(channel, recovered ? since!.Value : history.Position, recovered));
        if (recovered)
        {
            events.AddRange(history.Publications.Select(FrameEncoder.Message));
        }

        // One "reply", its events on separate lines: queued before anything that arrived while the subscription was pending.
        await _hub.Subscriptions.ActivateAsync(subscription, history.Position, FrameEncoder.Join(events));
    }

    private async Task<(string User, string? Refusal)> AuthenticateAsync(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        var fromHeader = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..].Trim() : null;
        var fromQuery = request.Query["token"].ToString() is { Length: > 0 } q ? q : null;
        var token = fromHeader ?? fromQuery;
        if (!_tokens.Enabled)
        {
            return ("", null);
        }

        if (token is null)
        {
            return _options.Auth.AllowAnonymous ? ("", null) : ("", "Send a connection token as 'Authorization: Bearer <token>' or, from a browser's EventSource, as ?token=.");
        }

        var identity = await _tokens.ValidateConnectionTokenAsync(token);
        if (identity is null)
        {
            return ("", "The connection token is not valid or has expired.");
        }

        // An address gets written down (proxy logs, browser history): one there must not stay useful for long.
        if (fromHeader is null && identity.ExpiresAt is { } expires && expires - _time.GetUtcNow() > _options.Sse.MaxQueryTokenLifetime)
        {
            return ("", $"A token in the address must expire within {_options.Sse.MaxQueryTokenLifetime} (PushService:Sse:MaxQueryTokenLifetime); send longer-lived ones in the Authorization header.");
        }

        if (fromHeader is null && identity.ExpiresAt is null)
        {
            return ("", "A token in the address must have an expiry (exp).");
        }

        return (identity.UserId, null);
    }

    private (int Status, string Title, string Detail)? Authorize(string channel, string user, out NamespaceOptions? ns)
    {
        var refusal = _access.Check(channel, user, out ns);
        return refusal switch
        {
            ChannelRefusal.BadName => (StatusCodes.Status400BadRequest, "Bad channel", $"'{(channel.Length > 64 ? channel[..64] + "…" : channel)}' is not a valid channel name."),
            ChannelRefusal.UnknownNamespace => (StatusCodes.Status404NotFound, "Unknown namespace", $"The namespace '{NamespaceResolver.NamespaceOf(channel)}' is not configured."),
            ChannelRefusal.OtherUsers => (StatusCodes.Status403Forbidden, "Forbidden", $"The channel '{channel}' is limited to other users."),
            ChannelRefusal.Anonymous => (StatusCodes.Status403Forbidden, "Forbidden", $"Anonymous clients may not use the namespace of '{channel}'."),

            // What only a stream refuses: it has no command to carry a subscription token.
            _ when ns is { RequireSubscriptionToken: true } => (StatusCodes.Status403Forbidden, "Forbidden",
                $"The namespace of '{channel}' needs a subscription token, which a stream cannot carry: subscribe over the WebSocket."),
            _ => null,
        };
    }

    private static Task Problem(HttpContext context, int status, string title, string detail) =>
        Results.Problem(statusCode: status, title: title, detail: detail).ExecuteAsync(context);

    private static partial class Log
    {
        [LoggerMessage(510, LogLevel.Debug, "Event stream {StreamId} opened for user '{User}': {Channels} channels, resuming: {Resuming}.")]
        public static partial void Opened(ILogger logger, string streamId, string user, int channels, bool resuming);
    }
}
