using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace PushService.Client;

/// <summary>
/// A subscriber client for contract v1. It keeps one WebSocket to one of the configured gateways, reconnects after
/// failures (at once after a drain, with jittered backoff otherwise, never after a close that says not to), and keeps
/// every subscription gap-free: after a reconnect, an offset gap or a server-side unsubscribe it subscribes again with
/// the last position it saw, so the gateway sends exactly what was missed.
/// </summary>
public sealed class PushClient : IAsyncDisposable
{
    private readonly PushClientOptions _options;
    private readonly ConcurrentDictionary<string, PushSubscription> _subscriptions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<long, PendingCommand> _pending = new();
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _disposed = new();
    private readonly TaskCompletionSource _firstConnect = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile ClientWebSocket? _socket;
    private long _nextId;
    private int _endpointIndex;
    private int _reconnects;
    private Task? _loop;

    /// <summary>Creates a client; nothing connects until <see cref="ConnectAsync"/>.</summary>
    public PushClient(PushClientOptions options)
    {
        if (options.Endpoints.Count == 0)
        {
            throw new ArgumentException("At least one endpoint is needed.", nameof(options));
        }

        _options = options;
    }

    /// <summary>The client id the gateway gave the current connection.</summary>
    public string? ClientId { get; private set; }

    /// <summary>The node of the current connection.</summary>
    public string? NodeId { get; private set; }

    /// <summary>How many times the client connected again after losing a connection.</summary>
    public int Reconnects => Volatile.Read(ref _reconnects);

    /// <summary>The close code and reason of the last lost connection.</summary>
    public (int Code, string Reason)? LastClose { get; private set; }

    /// <summary>True while connected.</summary>
    public bool IsConnected => _socket is { State: WebSocketState.Open } && ClientId is not null;

    /// <summary>True once the client stopped for good (a close that says not to reconnect, or disposal).</summary>
    public bool IsStopped { get; private set; }

    /// <summary>Starts the connection loop and waits until the first connection is established.</summary>
    public Task ConnectAsync(CancellationToken cancellationToken = default)
    {
        _loop ??= Task.Run(RunAsync, CancellationToken.None);
        return _firstConnect.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Subscribes to a channel; the subscription then lives across reconnects until unsubscribed.</summary>
    public Task<PushSubscription> SubscribeAsync(string channel, CancellationToken cancellationToken = default) =>
        SubscribeAsync(new PushSubscription(channel), cancellationToken);

    /// <summary>
    /// Subscribes to a channel from a known position: what was published after <paramref name="offset"/> in
    /// <paramref name="epoch"/> comes first, then live messages; a <see cref="ChannelEventKind.Reset"/> event says when
    /// history no longer holds all of it.
    /// </summary>
    public Task<PushSubscription> SubscribeAsync(string channel, string epoch, long offset, CancellationToken cancellationToken = default) =>
        SubscribeAsync(new PushSubscription(channel) { Epoch = epoch, Offset = offset }, cancellationToken);

    private async Task<PushSubscription> SubscribeAsync(PushSubscription subscription, CancellationToken cancellationToken)
    {
        var channel = subscription.Channel;
        if (!_subscriptions.TryAdd(channel, subscription))
        {
            throw new InvalidOperationException($"Already subscribed to '{channel}'.");
        }

        // Not connected right now: the next connection subscribes it, like every other subscription.
        if (_socket is { } socket)
        {
            try
            {
                await EnsureSubscribedAsync(subscription, socket, unsubscribeFirst: false, throwOnRejection: true, cancellationToken);
            }
            catch (PushCommandException)
            {
                _subscriptions.TryRemove(channel, out _);
                subscription.Complete();
                throw;
            }
        }

        return subscription;
    }

    /// <summary>Ends a subscription.</summary>
    public async Task UnsubscribeAsync(PushSubscription subscription, CancellationToken cancellationToken = default)
    {
        subscription.Removed = true;
        _subscriptions.TryRemove(subscription.Channel, out _);
        subscription.Complete();
        if (IsConnected)
        {
            await RequestAsync(new JsonObject { ["op"] = "unsubscribe", ["channel"] = subscription.Channel }, null, cancellationToken);
        }
    }

    /// <summary>Publishes from the client (where the channel's namespace allows it) and returns the position.</summary>
    public async Task<(string Epoch, long Offset)> PublishAsync(string channel, JsonNode? data, CancellationToken cancellationToken = default)
    {
        var result = Result(await RequestAsync(new JsonObject { ["op"] = "publish", ["channel"] = channel, ["data"] = data }, null, cancellationToken));
        return (result.GetProperty("epoch").GetString()!, result.GetProperty("offset").GetInt64());
    }

    /// <summary>Reads a channel's history: the raw <c>result</c> of the history command.</summary>
    public async Task<JsonElement> HistoryAsync(string channel, (string Epoch, long Offset)? since = null, int? limit = null, CancellationToken cancellationToken = default)
    {
        var command = new JsonObject { ["op"] = "history", ["channel"] = channel, ["limit"] = limit };
        if (since is { } s)
        {
            command["since"] = new JsonObject { ["epoch"] = s.Epoch, ["offset"] = s.Offset };
        }

        return Result(await RequestAsync(command, null, cancellationToken));
    }

    /// <summary>Who is subscribed to a channel (where the namespace keeps presence).</summary>
    public async Task<IReadOnlyList<(string Client, string User)>> PresenceAsync(string channel, CancellationToken cancellationToken = default)
    {
        var result = Result(await RequestAsync(new JsonObject { ["op"] = "presence", ["channel"] = channel }, null, cancellationToken));
        return [.. result.GetProperty("clients").EnumerateArray().Select(c => (c.GetProperty("client").GetString()!, c.GetProperty("user").GetString()!))];
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_disposed.IsCancellationRequested)
        {
            return;
        }

        await _disposed.CancelAsync();
        if (_socket is { } socket)
        {
            await WebSocketMessages.CloseOutputQuietlyAsync(socket, "bye", TimeSpan.FromSeconds(2));
        }

        if (_loop is not null)
        {
            await Task.WhenAny(_loop, Task.Delay(TimeSpan.FromSeconds(5)));
        }

        foreach (var subscription in _subscriptions.Values)
        {
            subscription.Complete();
        }

        _disposed.Dispose();
    }

    private async Task RunAsync()
    {
        var attempt = 0;
        var connectedOnce = false;
        while (!_disposed.IsCancellationRequested)
        {
            var endpoint = _options.Endpoints[(int)((uint)(Interlocked.Increment(ref _endpointIndex) - 1) % _options.Endpoints.Count)];
            var socket = new ClientWebSocket();
            socket.Options.AddSubProtocol("push.v1.json");
            socket.Options.KeepAliveInterval = TimeSpan.Zero;
            var close = (Code: -1, Reason: "", Reconnect: (bool?)null);
            try
            {
                using (var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(_disposed.Token))
                {
                    connectTimeout.CancelAfter(_options.CommandTimeout);
                    await socket.ConnectAsync(endpoint, connectTimeout.Token);
                }

                _socket = socket;
                var reading = ReadLoopAsync(socket);
                var token = _options.TokenProvider is null ? null : await _options.TokenProvider(_disposed.Token);
                var serverSide = new HashSet<string>(StringComparer.Ordinal);
                var reply = await RequestAsync(new JsonObject { ["op"] = "connect", ["token"] = token, ["name"] = _options.Name, ["version"] = _options.Version },
                    r => ApplyConnectResult(r, socket, serverSide), _disposed.Token);
                if (reply.TryGetProperty("result", out var result))
                {
                    ClientId = result.GetProperty("client").GetString();
                    NodeId = result.GetProperty("node").GetString();
                    attempt = 0;
                    if (connectedOnce)
                    {
                        Interlocked.Increment(ref _reconnects);
                    }

                    connectedOnce = true;
                    foreach (var subscription in _subscriptions.Values)
                    {
                        if (!serverSide.Contains(subscription.Channel))
                        {
                            subscription.IsActive = false;
                            _ = EnsureSubscribedAsync(subscription, socket, unsubscribeFirst: false, throwOnRejection: false, _disposed.Token);
                        }
                    }

                    if (result.TryGetProperty("expires", out var expires) && _options.TokenProvider is not null)
                    {
                        _ = RefreshBeforeAsync(DateTimeOffset.FromUnixTimeSeconds(expires.GetInt64()), socket);
                    }

                    _firstConnect.TrySetResult();
                }

                close = await reading;
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or PushCommandException or TimeoutException)
            {
                close = (-1, ex.Message, null);
            }
            finally
            {
                _socket = null;
                ClientId = null;
                foreach (var pending in _pending.Values)
                {
                    pending.Reply.TrySetException(new WebSocketException("The connection closed before the reply."));
                }

                _pending.Clear();
                foreach (var subscription in _subscriptions.Values)
                {
                    subscription.IsActive = false;
                }

                socket.Dispose();
            }

            LastClose = (close.Code, close.Reason);
            if (_disposed.IsCancellationRequested)
            {
                break;
            }

            var (reconnect, immediately) = ReconnectPolicy(close.Code, close.Reconnect);
            if (!reconnect)
            {
                IsStopped = true;
                _firstConnect.TrySetException(new PushCommandException("closed", $"The gateway closed the connection with {close.Code} ({close.Reason})."));
                foreach (var subscription in _subscriptions.Values)
                {
                    subscription.Complete();
                }

                return;
            }

            try
            {
                await Task.Delay(immediately ? TimeSpan.Zero : Backoff(attempt++), _disposed.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        IsStopped = true;
    }

    /// <summary>
    /// Takes in the channels the server subscribed at connect (the token's <c>channels</c> claim), on the read loop before any
    /// of their pushes: new ones become subscriptions; known ones that missed publications are subscribed again from their
    /// last position, so nothing is lost across the reconnect.
    /// </summary>
    private void ApplyConnectResult(JsonElement reply, ClientWebSocket socket, HashSet<string> serverSide)
    {
        if (!reply.TryGetProperty("result", out var result) || !result.TryGetProperty("subscriptions", out var subscriptions))
        {
            return;
        }

        foreach (var property in subscriptions.EnumerateObject())
        {
            var channel = property.Name;
            var epoch = property.Value.GetProperty("epoch").GetString()!;
            var offset = property.Value.GetProperty("offset").GetInt64();
            serverSide.Add(channel);
            var subscription = _subscriptions.GetOrAdd(channel, static c => new PushSubscription(c));
            if (subscription.Epoch is null)
            {
                subscription.Epoch = epoch;
                subscription.Offset = offset;
                subscription.IsActive = true;
            }
            else if (string.Equals(subscription.Epoch, epoch, StringComparison.Ordinal) && subscription.Offset >= offset)
            {
                subscription.IsActive = true;
            }
            else
            {
                subscription.IsActive = false;
                _ = EnsureSubscribedAsync(subscription, socket, unsubscribeFirst: true, throwOnRejection: false, _disposed.Token);
            }
        }
    }

    /// <summary>Sends <c>refresh</c> with a new token shortly before the connection token expires.</summary>
    private async Task RefreshBeforeAsync(DateTimeOffset expires, ClientWebSocket socket)
    {
        try
        {
            var lead = TimeSpan.FromSeconds(Math.Min(30, Math.Max(1, (expires - DateTimeOffset.UtcNow).TotalSeconds / 5)));
            var wait = expires - lead - DateTimeOffset.UtcNow;
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, _disposed.Token);
            }

            if (!ReferenceEquals(_socket, socket) || _options.TokenProvider is null)
            {
                return;
            }

            var token = await _options.TokenProvider(_disposed.Token);
            var result = Result(await RequestAsync(new JsonObject { ["op"] = "refresh", ["token"] = token }, null, _disposed.Token));
            if (result.TryGetProperty("expires", out var next))
            {
                _ = RefreshBeforeAsync(DateTimeOffset.FromUnixTimeSeconds(next.GetInt64()), socket);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or TimeoutException or PushCommandException)
        {
            // Not refreshed: the server closes with 4001 at expiry and the client reconnects with a new token.
        }
    }

    /// <summary>Gets a subscription by channel, including those the server made at connect from the token's channels.</summary>
    public PushSubscription? GetSubscription(string channel) => _subscriptions.GetValueOrDefault(channel);

    /// <summary>What a close means for the client (contract section 1.3); a <c>disconnect</c> push's own flag wins.</summary>
    private (bool Reconnect, bool Immediately) ReconnectPolicy(int code, bool? pushed)
    {
        var canRefreshToken = _options.TokenProvider is not null;
        var byCode = code switch
        {
            1000 => false,
            4000 or 4003 or 4009 => false,
            4001 => canRefreshToken,
            _ => true,
        };
        var reconnect = code == 4001 ? byCode : pushed ?? byCode;
        return (reconnect, code == 1001);
    }

    private TimeSpan Backoff(int attempt)
    {
        // Full jitter: spreads a crowd of clients that lost the same node over the whole window.
        var ceiling = Math.Min(_options.MaxReconnectDelay.TotalMilliseconds, _options.MinReconnectDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 16)));
        return TimeSpan.FromMilliseconds(_options.MinReconnectDelay.TotalMilliseconds + (Random.Shared.NextDouble() * ceiling));
    }

    /// <summary>
    /// Subscribes (again) on this connection, retrying while it lives and the server says to try later. Under the
    /// subscription's gate, and only while it is not active, so concurrent triggers (a reconnect, a gap, the application)
    /// lead to one subscribe on the server.
    /// </summary>
    private async Task EnsureSubscribedAsync(PushSubscription subscription, ClientWebSocket socket, bool unsubscribeFirst, bool throwOnRejection,
        CancellationToken cancellationToken)
    {
        try
        {
            await subscription.Gate.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        try
        {
            var attempt = 0;
            while (!subscription.Removed && !subscription.IsActive && ReferenceEquals(_socket, socket) && !_disposed.IsCancellationRequested)
            {
                try
                {
                    if (unsubscribeFirst)
                    {
                        Result(await RequestAsync(new JsonObject { ["op"] = "unsubscribe", ["channel"] = subscription.Channel }, null, cancellationToken));
                        unsubscribeFirst = false;
                    }

                    await SubscribeOnServerAsync(subscription, cancellationToken);
                }
                catch (PushCommandException ex) when (ex.Code is "unavailable" or "internal" or "rate_limited" or "already_subscribed")
                {
                    // The server lost track or cannot serve now: try again on this connection after a pause.
                    unsubscribeFirst = ex.Code == "already_subscribed";
                    await Task.Delay(Backoff(attempt++), cancellationToken);
                }
                catch (PushCommandException) when (!throwOnRejection)
                {
                    // Refused for good (for example permission revoked): the subscription ends.
                    subscription.Removed = true;
                    _subscriptions.TryRemove(new KeyValuePair<string, PushSubscription>(subscription.Channel, subscription));
                    subscription.Complete();
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or TimeoutException)
        {
            // The connection is going; the next one subscribes again.
        }
        finally
        {
            subscription.Gate.Release();
        }
    }

    private async Task SubscribeOnServerAsync(PushSubscription subscription, CancellationToken cancellationToken)
    {
        var command = new JsonObject { ["op"] = "subscribe", ["channel"] = subscription.Channel };
        var hadPosition = subscription.Epoch is not null;
        if (hadPosition)
        {
            command["since"] = new JsonObject { ["epoch"] = subscription.Epoch, ["offset"] = subscription.Offset };
        }

        // The result is applied on the read loop, before any push that follows it, so live messages continue exactly after it.
        Result(await RequestAsync(command, reply => ApplySubscribeResult(subscription, reply, hadPosition), cancellationToken));
    }

    private static void ApplySubscribeResult(PushSubscription subscription, JsonElement reply, bool hadPosition)
    {
        if (!reply.TryGetProperty("result", out var result) || subscription.Removed)
        {
            return;
        }

        var epoch = result.GetProperty("epoch").GetString()!;
        var offset = result.GetProperty("offset").GetInt64();
        var sameEpoch = string.Equals(epoch, subscription.Epoch, StringComparison.Ordinal);
        if (hadPosition)
        {
            if (result.GetProperty("recovered").GetBoolean())
            {
                subscription.Recoveries++;
            }
            else
            {
                subscription.Emit(new ChannelEvent(ChannelEventKind.Reset, subscription.Channel, epoch, offset, default));
            }
        }

        foreach (var message in result.GetProperty("messages").EnumerateArray())
        {
            var messageOffset = message.GetProperty("offset").GetInt64();
            if (sameEpoch && messageOffset <= subscription.Offset)
            {
                continue;
            }

            subscription.Emit(new ChannelEvent(ChannelEventKind.Message, subscription.Channel, epoch, messageOffset, message.GetProperty("data").Clone()));
            subscription.Offset = messageOffset;
        }

        subscription.Epoch = epoch;
        subscription.Offset = offset;
        subscription.IsActive = true;
    }

    private async Task<JsonElement> RequestAsync(JsonObject command, Action<JsonElement>? applyOnReadLoop, CancellationToken cancellationToken)
    {
        var socket = _socket ?? throw new WebSocketException("Not connected.");
        var id = Interlocked.Increment(ref _nextId);
        command["id"] = id;
        var pending = new PendingCommand(applyOnReadLoop);
        _pending[id] = pending;
        try
        {
            var bytes = Encoding.UTF8.GetBytes(command.ToJsonString());
            await _sendLock.WaitAsync(cancellationToken);
            try
            {
                await socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
            }
            finally
            {
                _sendLock.Release();
            }

            return await pending.Reply.Task.WaitAsync(_options.CommandTimeout, cancellationToken);
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    private static JsonElement Result(JsonElement reply)
    {
        if (reply.TryGetProperty("error", out var error))
        {
            throw new PushCommandException(error.GetProperty("code").GetString() ?? "internal", error.GetProperty("message").GetString() ?? "");
        }

        return reply.GetProperty("result");
    }

    private async Task<(int Code, string Reason, bool? Reconnect)> ReadLoopAsync(ClientWebSocket socket)
    {
        var buffer = new StrongBox<byte[]>(new byte[64 * 1024]);
        bool? reconnect = null;
        while (true)
        {
            var (length, type) = await WebSocketMessages.ReceiveAsync(socket, buffer);
            if (type == WebSocketMessageType.Close)
            {
                if (socket.State == WebSocketState.CloseReceived)
                {
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
                }

                return ((int)(socket.CloseStatus ?? 0), socket.CloseStatusDescription ?? "", reconnect);
            }

            // A server frame holds one or more objects separated by '\n'.
            ReadOnlyMemory<byte> frame = buffer.Value.AsMemory(0, length);
            while (!frame.IsEmpty)
            {
                var end = frame.Span.IndexOf((byte)'\n');
                var part = end < 0 ? frame : frame[..end];
                frame = end < 0 ? ReadOnlyMemory<byte>.Empty : frame[(end + 1)..];
                using var document = JsonDocument.Parse(part);
                reconnect = await HandleAsync(document.RootElement, socket) ?? reconnect;
            }
        }
    }

    /// <summary>Handles one server object; returns the reconnect flag of a <c>disconnect</c> push.</summary>
    private async Task<bool?> HandleAsync(JsonElement element, ClientWebSocket socket)
    {
        if (element.TryGetProperty("id", out var id))
        {
            if (_pending.TryGetValue(id.GetInt64(), out var pending))
            {
                pending.ApplyOnReadLoop?.Invoke(element);
                pending.Reply.TrySetResult(element.Clone());
            }

            return null;
        }

        switch (element.GetProperty("type").GetString())
        {
            case "message":
                OnMessage(element, socket);
                break;
            case "join":
            case "leave":
                if (_subscriptions.TryGetValue(element.GetProperty("channel").GetString()!, out var target))
                {
                    var kind = element.GetProperty("type").GetString() == "join" ? ChannelEventKind.Join : ChannelEventKind.Leave;
                    target.Emit(new ChannelEvent(kind, target.Channel, target.Epoch ?? "", 0, element.Clone()));
                }

                break;
            case "unsubscribed":
                if (_subscriptions.TryGetValue(element.GetProperty("channel").GetString()!, out var dropped))
                {
                    dropped.IsActive = false;
                    _ = EnsureSubscribedAsync(dropped, socket, unsubscribeFirst: false, throwOnRejection: false, _disposed.Token);
                }

                break;
            case "ping":
                await _sendLock.WaitAsync();
                try
                {
                    await socket.SendAsync("{\"op\":\"pong\"}"u8.ToArray(), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
                }
                finally
                {
                    _sendLock.Release();
                }

                break;
            case "disconnect":
                return element.GetProperty("reconnect").GetBoolean();
        }

        return null;
    }

    private void OnMessage(JsonElement element, ClientWebSocket socket)
    {
        if (!_subscriptions.TryGetValue(element.GetProperty("channel").GetString()!, out var subscription) || !subscription.IsActive)
        {
            return;
        }

        var offset = element.GetProperty("offset").GetInt64();
        if (offset <= subscription.Offset)
        {
            return;
        }

        if (offset == subscription.Offset + 1)
        {
            subscription.Offset = offset;
            subscription.Emit(new ChannelEvent(ChannelEventKind.Message, subscription.Channel, subscription.Epoch!, offset, element.GetProperty("data").Clone()));
            return;
        }

        // A gap: subscribe again from the last offset seen; the gateway sends what is missing.
        subscription.IsActive = false;
        _ = EnsureSubscribedAsync(subscription, socket, unsubscribeFirst: true, throwOnRejection: false, _disposed.Token);
    }

    private sealed class PendingCommand(Action<JsonElement>? applyOnReadLoop)
    {
        public Action<JsonElement>? ApplyOnReadLoop { get; } = applyOnReadLoop;

        public TaskCompletionSource<JsonElement> Reply { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
