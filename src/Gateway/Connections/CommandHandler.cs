using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PushService.Broker;
using PushService.Gateway.Auth;
using PushService.Gateway.Configuration;
using PushService.Gateway.Hub;
using PushService.Gateway.Protocol;
using PushService.Gateway.Publishing;
using PushService.Gateway.Telemetry;

namespace PushService.Gateway.Connections;

/// <summary>
/// Carries out client commands (contract section 1.1). Commands of one connection run one at a time, in order.
/// Every failure becomes an error reply or a close code; nothing a client sends can throw past this class.
/// </summary>
internal sealed partial class CommandHandler
{
    private readonly LocalHub _hub;
    private readonly ConnectionRegistry _connections;
    private readonly IBroker _broker;
    private readonly IPresenceStore _presence;
    private readonly Publisher _publisher;
    private readonly NamespaceResolver _namespaces;
    private readonly TokenValidator _tokens;
    private readonly ChannelAccess _access;
    private readonly PushMetrics _metrics;
    private readonly PushServiceOptions _options;
    private readonly NodeIdentity _node;
    private readonly ILogger<CommandHandler> _logger;

    public CommandHandler(LocalHub hub, ConnectionRegistry connections, IBroker broker, IPresenceStore presence, Publisher publisher, NamespaceResolver namespaces, TokenValidator tokens,
        PushMetrics metrics, IOptions<PushServiceOptions> options, NodeIdentity node, ILogger<CommandHandler> logger)
    {
        _hub = hub;
        _connections = connections;
        _broker = broker;
        _presence = presence;
        _publisher = publisher;
        _namespaces = namespaces;
        _tokens = tokens;
        _access = new ChannelAccess(namespaces, tokens);
        _metrics = metrics;
        _options = options.Value;
        _node = node;
        _logger = logger;
    }

    public async ValueTask HandleAsync(ClientConnection connection, ReadOnlyMemory<byte> frame)
    {
        var command = CommandDecoder.Decode(frame.Span, out var fatalError);
        if (command is null)
        {
            Log.BadFrame(_logger, connection.Id, fatalError!);
            connection.RequestClose(Disconnect.BadRequest);
            return;
        }

        if (!connection.IsConnected && command.Op != CommandOp.Connect)
        {
            _metrics.Rejected(RejectionReasons.Auth, fromApi: false);
            connection.RequestClose(Disconnect.Unauthorized);
            return;
        }

        if (command.Op == CommandOp.Pong)
        {
            return;
        }

        if (!connection.TryTakeCommand())
        {
            _metrics.Rejected(RejectionReasons.Rate, fromApi: false);
            connection.RequestClose(Disconnect.RateLimited);
            return;
        }

        if (command.FieldError is not null)
        {
            connection.Reply(FrameEncoder.Error(command.Id, ErrorCodes.BadRequest, command.FieldError));
            return;
        }

        // What the command logs, here and in the hub and broker beneath it, names the node, the connection and the channel.
        // A scope per command rather than per connection: a scope held for a connection's life would give every idle
        // connection an execution context of its own; the connection's own logs name it in their messages.
        using var scope = _logger.BeginScope(LogScope.Command(_node.Id, connection.Id, command.Channel));
        try
        {
            var reply = command.Op switch
            {
                CommandOp.Connect => await ConnectAsync(connection, command),
                CommandOp.Subscribe => await SubscribeAsync(connection, command),
                CommandOp.Unsubscribe => await UnsubscribeAsync(connection, command),
                CommandOp.Publish => await PublishAsync(connection, command),
                CommandOp.History => await HistoryAsync(connection, command),
                CommandOp.Presence => await PresenceAsync(connection, command),
                CommandOp.Ping => FrameEncoder.EmptyResult(command.Id),
                CommandOp.Refresh => await RefreshAsync(connection, command),
                _ => Error(command, ErrorCodes.BadRequest, "Unsupported op."),
            };

            if (reply is not null)
            {
                connection.Reply(reply);
            }
        }
        catch (BrokerUnavailableException ex)
        {
            connection.Reply(Error(command, ErrorCodes.Unavailable, ex.Message));
        }
        catch (Exception ex)
        {
            Log.CommandFailed(_logger, command.Op.ToString(), connection.Id, ex);
            connection.Reply(Error(command, ErrorCodes.Internal, "The command failed on the server."));
        }
    }

    private async ValueTask<byte[]?> ConnectAsync(ClientConnection connection, Command command)
    {
        if (connection.IsConnected)
        {
            return Error(command, ErrorCodes.BadRequest, "The connection is already connected.");
        }

        var identity = await _tokens.ValidateConnectionTokenAsync(command.Token);
        if (identity is null)
        {
            connection.Reply(Error(command, ErrorCodes.Unauthorized, "The connection token is missing, invalid or expired."));
            connection.RequestClose(Disconnect.Unauthorized);
            return null;
        }

        if (identity.UserId.Length > 0 && !_connections.Users.TryTake(identity.UserId, _options.Limits.MaxConnectionsPerUser))
        {
            connection.Reply(Error(command, ErrorCodes.LimitExceeded, $"User has {_options.Limits.MaxConnectionsPerUser} connections on this node already."));
            connection.RequestClose(Disconnect.Forbidden);
            return null;
        }

        connection.MarkConnected(identity.UserId, command.Name, command.Version, identity.ExpiresAt);

        // Channels the token names are subscribed before the reply, and go live right after it, so the client sees the
        // reply (with their positions) first and every message after those positions.
        var serverSide = new List<(Subscription Subscription, StreamPosition Position)>();
        foreach (var channel in identity.Channels.Distinct(StringComparer.Ordinal).Take(_options.Limits.MaxChannelsPerConnection))
        {
            var ns = ChannelName.IsValid(channel) ? _namespaces.Resolve(channel) : null;
            if (ns is null || !ChannelName.AllowsUser(channel, identity.UserId))
            {
                continue;
            }

            try
            {
                var (subscription, history) = await _hub.Subscriptions.StartAsync(connection, channel, ns, since: null, expiresAtTicks: 0);
                serverSide.Add((subscription, history.Position));
            }
            catch (BrokerUnavailableException)
            {
                // The client learns from the reply which channels it holds; it may subscribe to the rest itself.
            }
        }

        var pingSeconds = (int)Math.Ceiling(_options.WebSocket.PingInterval.TotalSeconds);
        var reply = FrameEncoder.Result(command.Id, static (w, s) =>
        {
            w.WriteString("client"u8, s.Client);
            w.WriteString("node"u8, s.Node);
            w.WriteNumber("pingInterval"u8, s.Ping);
            if (s.Expires is { } expires)
            {
                w.WriteNumber("expires"u8, expires.ToUnixTimeSeconds());
            }

            if (s.ServerSide.Count > 0)
            {
                w.WriteStartObject("subscriptions"u8);
                foreach (var (subscription, position) in s.ServerSide)
                {
                    w.WriteStartObject(subscription.Channel);
                    w.WriteString("epoch"u8, position.Epoch);
                    w.WriteNumber("offset"u8, position.Offset);
                    w.WriteEndObject();
                }

                w.WriteEndObject();
            }
        }, (Client: connection.Id, Node: _node.Id, Ping: pingSeconds, Expires: identity.ExpiresAt, ServerSide: serverSide));

        connection.Reply(reply);
        foreach (var (subscription, position) in serverSide)
        {
            await _hub.Subscriptions.ActivateAsync(subscription, position, reply: null);
        }

        return null;
    }

    private async ValueTask<byte[]?> RefreshAsync(ClientConnection connection, Command command)
    {
        if (!_tokens.Enabled)
        {
            return Error(command, ErrorCodes.BadRequest, "Tokens are not checked on this node; there is nothing to refresh.");
        }

        var identity = await _tokens.ValidateConnectionTokenAsync(command.Token);
        if (identity is null || string.IsNullOrEmpty(command.Token))
        {
            return Error(command, ErrorCodes.Unauthorized, "The new token is missing, invalid or expired.");
        }

        if (!string.Equals(identity.UserId, connection.UserId, StringComparison.Ordinal))
        {
            return Error(command, ErrorCodes.PermissionDenied, "The new token is for another user.");
        }

        connection.TokenExpiresAtTicks = identity.ExpiresAt?.UtcTicks ?? 0;
        return FrameEncoder.Result(command.Id, static (w, e) =>
        {
            if (e is { } expires)
            {
                w.WriteNumber("expires"u8, expires.ToUnixTimeSeconds());
            }
        }, identity.ExpiresAt);
    }

    private async ValueTask<byte[]?> SubscribeAsync(ClientConnection connection, Command command)
    {
        if (!TryAuthorizeChannel(connection, command, out var channel, out var ns, out var error))
        {
            return error;
        }

        if (connection.Subscriptions.Contains(channel))
        {
            return Error(command, ErrorCodes.AlreadySubscribed, $"Already subscribed to '{channel}'.");
        }

        if (connection.Subscriptions.Count >= _options.Limits.MaxChannelsPerConnection)
        {
            return Error(command, ErrorCodes.LimitExceeded, $"A connection may hold at most {_options.Limits.MaxChannelsPerConnection} subscriptions.");
        }

        var expiresAtTicks = 0L;
        if (ns.RequireSubscriptionToken)
        {
            var (valid, expiresAt) = await _tokens.ValidateSubscriptionTokenAsync(command.Token, connection.UserId, channel);
            if (!valid)
            {
                return Error(command, ErrorCodes.Unauthorized, "This namespace needs a valid subscription token for this user and channel.");
            }

            expiresAtTicks = expiresAt?.UtcTicks ?? 0;
        }

        var (subscription, history) = await _hub.Subscriptions.StartAsync(connection, channel, ns, command.Since, expiresAtTicks);
        var recovered = command.Since is { } s && history.IsCompleteSince(s);
        if (command.Since is not null)
        {
            _metrics.Recovered(recovered);
        }

        var reply = FrameEncoder.Result(command.Id, static (w, st) =>
        {
            w.WriteString("epoch"u8, st.History.Position.Epoch);
            w.WriteNumber("offset"u8, st.History.Position.Offset);
            w.WriteBoolean("recovered"u8, st.Recovered);
            FrameEncoder.WriteMessages(w, st.History.Publications);
        }, (History: history, Recovered: recovered));

        await _hub.Subscriptions.ActivateAsync(subscription, history.Position, reply);
        return null;
    }

    private async ValueTask<byte[]?> UnsubscribeAsync(ClientConnection connection, Command command)
    {
        if (string.IsNullOrEmpty(command.Channel))
        {
            return Error(command, ErrorCodes.BadRequest, "'channel' is required.");
        }

        await _hub.Subscriptions.EndAsync(connection, command.Channel);
        return FrameEncoder.EmptyResult(command.Id);
    }

    private async ValueTask<byte[]?> PublishAsync(ClientConnection connection, Command command)
    {
        if (!TryAuthorizeChannel(connection, command, out var channel, out var ns, out var error))
        {
            return error;
        }

        if (!ns.AllowClientPublish)
        {
            return Error(command, ErrorCodes.PermissionDenied, "Clients may not publish to this channel's namespace.");
        }

        if (command.Data is null)
        {
            return Error(command, ErrorCodes.BadRequest, "'data' is required.");
        }

        try
        {
            var result = await _publisher.PublishAsync(channel, ns, command.Data, idempotencyKey: null, fromApi: false, CancellationToken.None);
            return PositionResult(command.Id, result.Position);
        }
        catch (IdempotencyConflictException ex)
        {
            return Error(command, ErrorCodes.BadRequest, ex.Message);
        }
    }

    private async ValueTask<byte[]?> HistoryAsync(ClientConnection connection, Command command)
    {
        if (!TryAuthorizeChannel(connection, command, out var channel, out var ns, out var error))
        {
            return error;
        }

        if (!ns.AllowClientHistory)
        {
            return Error(command, ErrorCodes.PermissionDenied, "Clients may not read history in this channel's namespace.");
        }

        if (ns.RequireSubscriptionToken && !connection.Subscriptions.Contains(channel))
        {
            return Error(command, ErrorCodes.PermissionDenied, "This namespace serves history only to subscribers of the channel.");
        }

        var limit = command.Limit is { } l ? Math.Min(l, _options.Limits.MaxHistoryLimit) : _options.Limits.MaxHistoryLimit;
        var history = await _broker.HistoryAsync(channel, new HistoryQuery { Since = command.Since, Limit = limit });
        return FrameEncoder.Result(command.Id, static (w, h) =>
        {
            w.WriteString("epoch"u8, h.Position.Epoch);
            w.WriteNumber("offset"u8, h.Position.Offset);
            FrameEncoder.WriteMessages(w, h.Publications);
        }, history);
    }

    private async ValueTask<byte[]?> PresenceAsync(ClientConnection connection, Command command)
    {
        if (!TryAuthorizeChannel(connection, command, out var channel, out var ns, out var error))
        {
            return error;
        }

        if (!ns.Presence || !ns.AllowClientPresence)
        {
            return Error(command, ErrorCodes.PermissionDenied, "Presence is not enabled for clients in this channel's namespace.");
        }

        if (ns.RequireSubscriptionToken && !connection.Subscriptions.Contains(channel))
        {
            return Error(command, ErrorCodes.PermissionDenied, "This namespace serves presence only to subscribers of the channel.");
        }

        var entries = await _presence.GetAsync(channel);
        return FrameEncoder.Result(command.Id, static (w, e) => FrameEncoder.WriteClients(w, e), entries);
    }

    /// <summary>Checks the channel name, its namespace and the user limit shared by subscribe, publish and history.</summary>
    private bool TryAuthorizeChannel(ClientConnection connection, Command command, out string channel, out NamespaceOptions ns, out byte[]? error)
    {
        channel = command.Channel ?? "";
        var refusal = _access.Check(channel, connection.UserId, out var resolved);
        ns = resolved!;
        error = refusal switch
        {
            ChannelRefusal.None => null,
            ChannelRefusal.BadName => Error(command, ErrorCodes.BadRequest, "'channel' must be 1 to 255 characters of A-Z a-z 0-9 _ - : . @ / = #."),
            ChannelRefusal.UnknownNamespace => Error(command, ErrorCodes.NotFound, $"The namespace '{NamespaceResolver.NamespaceOf(channel)}' is not configured."),
            ChannelRefusal.OtherUsers => Error(command, ErrorCodes.PermissionDenied, "This channel is limited to other users."),
            _ => Error(command, ErrorCodes.PermissionDenied, "Anonymous clients may not use this channel's namespace."),
        };
        return error is null;
    }

    private static byte[] PositionResult(long id, StreamPosition position) =>
        FrameEncoder.Result(id, static (w, p) =>
        {
            w.WriteString("epoch"u8, p.Epoch);
            w.WriteNumber("offset"u8, p.Offset);
        }, position);

    /// <summary>An error reply; the refusals among them (auth, permission, limits) are counted by reason.</summary>
    private byte[] Error(Command command, string code, string message)
    {
        if (RejectionReasons.ForErrorCode(code) is { } reason)
        {
            _metrics.Rejected(reason, fromApi: false);
        }

        return FrameEncoder.Error(command.Id, code, message);
    }

    private static partial class Log
    {
        [LoggerMessage(300, LogLevel.Debug, "Connection {ConnectionId} sent a bad frame: {Error}")]
        public static partial void BadFrame(ILogger logger, string connectionId, string error);

        [LoggerMessage(301, LogLevel.Error, "The {Op} command of connection {ConnectionId} failed.")]
        public static partial void CommandFailed(ILogger logger, string op, string connectionId, Exception exception);
    }
}
