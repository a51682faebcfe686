using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly;
using Polly.CircuitBreaker;
using Polly.Registry;
using PushService.Broker.Redis.Commands;
using PushService.Broker.Redis.Resp;
using PushService.Broker.Redis.Subscriptions;
using StackExchange.Redis;

namespace PushService.Broker.Redis;

/// <summary>
/// The Redis backplane. A publish is one Lua script (offset, history, idempotency, PUBLISH) run by SHA, on a connection of
/// the broker's own (<see cref="CommandConnection"/>, with one plain Redis server) or through StackExchange.Redis; each
/// node holds one Redis subscription per channel with local subscribers, read in order on a connection of its own
/// (<see cref="SubscriptionConnection"/>, with one plain Redis server) or through a <see cref="ChannelMessageQueue"/>.
/// The node remembers the last offset it delivered per channel and fills any gap from history before delivering newer
/// publications, after an offset gap or a reconnect, so subscribers see gap-free order without reconnecting.
/// Calls go through a resilience pipeline (a circuit breaker): while Redis is down they fail fast with
/// <see cref="BrokerUnavailableException"/>. A call that Redis does not answer fails after
/// <see cref="RedisBrokerOptions.OperationTimeout"/>, StackExchange.Redis's own asynchronous timeout.
/// </summary>
public sealed partial class RedisBroker : IBroker, IAsyncDisposable
{
    /// <summary>The name of the resilience pipeline the broker runs its Redis calls through.</summary>
    public const string PipelineName = "pushservice-redis";

    private readonly ConcurrentDictionary<string, ChannelFeed> _feeds = new(StringComparer.Ordinal);
    private readonly RedisConnection _connection;
    private readonly RedisBrokerOptions _options;
    private readonly ResiliencePipeline _pipeline;
    private readonly CircuitBreakerStateProvider _circuit;
    private readonly ILogger<RedisBroker> _logger;
    private readonly CancellationTokenSource _stopping = new();
    private IBrokerEventHandler? _handler;
    private ConnectionMultiplexer? _multiplexer;
    private SubscriptionConnection? _subscriptions;
    private CommandConnection? _commands;
    private RedisKeys Keys => _connection.Keys;

    /// <summary>Creates the broker.</summary>
    public RedisBroker(RedisConnection connection, IOptions<RedisBrokerOptions> options, ResiliencePipelineProvider<string> pipelines,
        CircuitBreakerStateProvider circuit, ILogger<RedisBroker> logger)
    {
        _connection = connection;
        _options = options.Value;
        _pipeline = pipelines.GetPipeline(PipelineName);
        _circuit = circuit;
        _logger = logger;
    }

    /// <inheritdoc />
    public bool IsAvailable => _connection.IsConnected && (_subscriptions?.IsConnected ?? true)
        && _circuit.CircuitState is CircuitState.Closed or CircuitState.HalfOpen;

    /// <summary>
    /// Adds the broker's resilience pipeline: a circuit breaker that opens on repeated failures. It has no timeout
    /// strategy: Polly's is cooperative and no Redis call observes a cancellation token, so it could never fire; the
    /// multiplexer times calls out itself (<see cref="RedisBrokerOptions.OperationTimeout"/> is its <c>AsyncTimeout</c>).
    /// </summary>
    public static void ConfigurePipeline(ResiliencePipelineBuilder builder, RedisBrokerOptions options, CircuitBreakerStateProvider state)
    {
        var failures = new PredicateBuilder()
            .Handle<RedisConnectionException>()
            .Handle<RedisTimeoutException>()
            .Handle<RedisServerException>(RedisFailures.IsTransient);
        builder.AddCircuitBreaker(new CircuitBreakerStrategyOptions
        {
            FailureRatio = 0.5,
            MinimumThroughput = 3,
            SamplingDuration = TimeSpan.FromSeconds(5),
            BreakDuration = options.BreakDuration,
            ShouldHandle = failures,
            StateProvider = state,
        });
    }

    /// <inheritdoc />
    public async Task StartAsync(IBrokerEventHandler handler, CancellationToken cancellationToken)
    {
        _handler = handler;
        _multiplexer = await _connection.GetAsync();
        _multiplexer.ConnectionRestored += (_, e) =>
        {
            // Pub/sub is at most once: whatever was published while this node was cut off is read back from history.
            _ = ResyncAfterReconnectAsync();
        };

        // The broker's own connections speak plain RESP2 to one server; TLS, Sentinel and Cluster stay with the library.
        var configuration = ConfigurationOptions.Parse(_options.Configuration);
        var plain = !_connection.Sharded && configuration.EndPoints.Count == 1 && !configuration.Ssl && string.IsNullOrEmpty(configuration.ServiceName);
        if (!plain)
        {
            return;
        }

        var server = new RespServer(configuration.EndPoints[0], configuration.User, configuration.Password,
            configuration.DefaultDatabase, configuration.ClientName ?? RedisConnection.DefaultClientName);
        if (_options.DirectPublish)
        {
            _commands = new CommandConnection(server, [RedisScripts.Publish], _options.OperationTimeout, _logger);
            await _commands.StartAsync();
        }

        if (_options.DirectSubscriptions)
        {
            _subscriptions = new SubscriptionConnection(server, _options.OperationTimeout, _options.BreakDuration, OnDirectMessage,
                () => [.. _feeds.Keys.Select(Keys.PubSub)], () => _ = ResyncAfterReconnectAsync(), _logger);
            await _subscriptions.StartAsync();
        }
    }

    /// <inheritdoc />
    public async ValueTask<PublishResult> PublishAsync(string channel, ReadOnlyMemory<byte> data, PublishOptions options, CancellationToken cancellationToken = default)
    {
        var command = new PublishCommand(Keys, channel, data, options, _options, _connection.Sharded);

        // While the broker's own connection is reconnecting, the multiplexer's may still be up.
        var reply = _commands is { IsConnected: true } direct
            ? await ExecuteAsync(static s => PublishDirectAsync(s.direct, s.command), (direct, command), cancellationToken)
            : await RunAsync(async db => PublishCommand.Read(await db.ScriptEvaluateAsync(RedisScripts.Publish, command.Keys, command.Arguments)), cancellationToken);
        if (reply.Status < 0)
        {
            throw new IdempotencyConflictException($"The idempotency key '{options.IdempotencyKey}' was already used on channel '{channel}' with different data.");
        }

        return new PublishResult(new StreamPosition(reply.Offset, reply.Epoch!), Duplicate: reply.Status == 0);
    }

    /// <summary>Runs the publish script by SHA, and with its text when Redis does not have it (after a restart or a
    /// <c>SCRIPT FLUSH</c>), which also stores it for the next.</summary>
    private static async Task<PublishReply> PublishDirectAsync(CommandConnection connection, PublishCommand command)
    {
        try
        {
            return await connection.SendAsync(command, static (writer, c) => c.Write(writer, withScript: false), PublishCommand.Read);
        }
        catch (RedisServerException ex) when (ex.Message.StartsWith("NOSCRIPT", StringComparison.Ordinal))
        {
            return await connection.SendAsync(command, static (writer, c) => c.Write(writer, withScript: true), PublishCommand.Read);
        }
    }

    /// <inheritdoc />
    public async ValueTask<StreamPosition> SubscribeAsync(string channel, CancellationToken cancellationToken = default)
    {
        var feed = new ChannelFeed(channel);
        if (!_feeds.TryAdd(channel, feed))
        {
            throw new InvalidOperationException($"Channel '{channel}' is already subscribed on this node.");
        }

        await feed.Gate.WaitAsync(cancellationToken);
        var pubSubName = Keys.PubSub(channel);
        try
        {
            if (_subscriptions is { } direct)
            {
                await direct.SubscribeAsync(pubSubName);
            }
            else
            {
                var subscriber = Multiplexer.GetSubscriber();
                feed.Queue = await Guard(() => subscriber.SubscribeAsync(_connection.PubSubChannel(pubSubName)));
                feed.Queue.OnMessage(message => OnMessageAsync(feed, (ReadOnlyMemory<byte>)message.Message));
            }

            // Read after the subscription is confirmed: anything published later arrives through it.
            var position = (await HistoryAsync(channel, new HistoryQuery { Limit = 0 }, cancellationToken)).Position;
            feed.Last = position;
            return position;
        }
        catch
        {
            _feeds.TryRemove(new KeyValuePair<string, ChannelFeed>(channel, feed));
            feed.Closed = true;
            await ReleaseSubscriptionAsync(feed, pubSubName);
            throw;
        }
        finally
        {
            feed.Gate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask UnsubscribeAsync(string channel, CancellationToken cancellationToken = default)
    {
        if (_feeds.TryRemove(channel, out var feed))
        {
            feed.Closed = true;
            await ReleaseSubscriptionAsync(feed, Keys.PubSub(channel));
        }
    }

    private async Task ReleaseSubscriptionAsync(ChannelFeed feed, string pubSubName)
    {
        if (_subscriptions is { } direct)
        {
            await direct.UnsubscribeAsync(pubSubName);
        }
        else if (feed.Queue is { } queue)
        {
            await SafeUnsubscribeAsync(queue);
        }
    }

    /// <inheritdoc />
    public async ValueTask<HistoryResult> HistoryAsync(string channel, HistoryQuery query, CancellationToken cancellationToken = default)
    {
        if (query.Limit < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(query), "The limit must not be negative.");
        }

        RedisKey[] keys = [Keys.Meta(channel), Keys.Stream(channel)];
        RedisValue[] args =
        [
            Epochs.New(),
            (long)_options.PositionTtl.TotalMilliseconds,
            query.Since is null ? "newest" : "since",
            query.Since?.Offset ?? 0,
            query.Limit ?? -1,
            query.Since?.Epoch ?? "",
        ];

        var result = (RedisResult[])(await RunAsync(db => db.ScriptEvaluateAsync(RedisScripts.History, keys, args), cancellationToken))!;
        var position = new StreamPosition((long)result[1], (string)result[0]!);
        var publications = new List<Publication>((result.Length - 2) / 2);
        for (var i = 2; i + 1 < result.Length; i += 2)
        {
            publications.Add(new Publication(channel, (long)result[i], position.Epoch, (byte[])result[i + 1]!));
        }

        return new HistoryResult(position, publications);
    }

    /// <inheritdoc />
    public async ValueTask PublishJoinLeaveAsync(string channel, PresenceEntry entry, bool join, CancellationToken cancellationToken = default)
    {
        var subscriber = Multiplexer.GetSubscriber();
        await RunAsync(_ => subscriber.PublishAsync(_connection.PubSubChannel(Keys.PubSub(channel)), RedisEnvelope.JoinLeave(join, entry)), cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync();
        if (_subscriptions is { } direct)
        {
            await direct.DisposeAsync();
        }

        if (_commands is { } commands)
        {
            await commands.DisposeAsync();
        }

        foreach (var feed in _feeds.Values)
        {
            feed.Closed = true;
        }

        _feeds.Clear();
        _stopping.Dispose();
    }

    /// <summary>Whether pub/sub messages are read on the broker's own connection (see <see cref="RedisBrokerOptions.DirectSubscriptions"/>).</summary>
    internal bool ReadsSubscriptionsDirectly => _subscriptions is not null;

    /// <summary>How many times the broker's own subscription connection was made (0 without one).</summary>
    internal int SubscriptionConnects => _subscriptions?.Connects ?? 0;

    /// <summary>Whether publications are run on the broker's own connection (see <see cref="RedisBrokerOptions.DirectPublish"/>).</summary>
    internal bool PublishesDirectly => _commands is not null;

    /// <summary>How many times the broker's own command connection was made (0 without one).</summary>
    internal int CommandConnects => _commands?.Connects ?? 0;

    /// <summary>How many commands were sent on the broker's own command connection (0 without one).</summary>
    internal long DirectCommands => _commands?.Sent ?? 0;

    private ConnectionMultiplexer Multiplexer => _multiplexer ?? throw new InvalidOperationException("The broker was not started.");

    /// <summary>A message read on the subscription connection, on its reading thread: delivered there unless the feed's gate is
    /// held (a gap fill), in which case it waits its turn, in order (the gate's waiters are served first come, first
    /// served). The payload is copied: the connection reads into the same buffer again.</summary>
    private void OnDirectMessage(string pubSubName, ReadOnlyMemory<byte> payload)
    {
        if (Keys.ChannelOf(pubSubName) is { } channel && _feeds.TryGetValue(channel, out var feed))
        {
            _ = OnMessageAsync(feed, payload.ToArray());
        }
    }

    private async Task OnMessageAsync(ChannelFeed feed, ReadOnlyMemory<byte> payload)
    {
        if (feed.Closed || _handler is not { } handler)
        {
            return;
        }

        try
        {
            // The feed's last position is read without its gate: only as a string to reuse when the bytes match.
            if (RedisEnvelope.TryReadPublication(feed.Channel, payload, feed.Last?.Epoch, out var publication))
            {
                await feed.Gate.WaitAsync(_stopping.Token);
                try
                {
                    await DeliverInOrderAsync(feed, publication!, handler);
                }
                finally
                {
                    feed.Gate.Release();
                }
            }
            else if (RedisEnvelope.TryReadJoinLeave(payload.Span, out var join, out var entry))
            {
                await handler.HandleJoinLeaveAsync(feed.Channel, entry!, join);
            }
            else
            {
                Log.BadEnvelope(_logger, feed.Channel);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            Log.DeliveryFailed(_logger, feed.Channel, ex);
        }
    }

    /// <summary>Delivers <paramref name="publication"/> after anything missed before it; called with the feed's gate held.</summary>
    private async Task DeliverInOrderAsync(ChannelFeed feed, Publication publication, IBrokerEventHandler handler)
    {
        if (feed.Closed || feed.Last is not { } last)
        {
            return;
        }

        if (!string.Equals(publication.Epoch, last.Epoch, StringComparison.Ordinal))
        {
            // The channel's stream was lost and restarted: nobody can vouch for what came before.
            Log.EpochChanged(_logger, feed.Channel, last.Epoch, publication.Epoch);
            feed.Last = new StreamPosition(publication.Offset, publication.Epoch);
            await handler.HandleStreamResetAsync(feed.Channel);
            return;
        }

        if (publication.Offset <= last.Offset)
        {
            return;
        }

        if (publication.Offset > last.Offset + 1 && !await FillGapAsync(feed, handler))
        {
            return;
        }

        if (publication.Offset == feed.Last!.Value.Offset + 1)
        {
            feed.Last = new StreamPosition(publication.Offset, publication.Epoch);
            await handler.HandlePublicationAsync(publication);
        }
    }

    /// <summary>Reads and delivers what was published after the feed's last position. False when continuity could not be kept.</summary>
    private async Task<bool> FillGapAsync(ChannelFeed feed, IBrokerEventHandler handler)
    {
        var last = feed.Last!.Value;
        HistoryResult history;
        try
        {
            history = await HistoryAsync(feed.Channel, new HistoryQuery { Since = last }, _stopping.Token);
        }
        catch (BrokerUnavailableException ex)
        {
            Log.GapFillFailed(_logger, feed.Channel, ex.Message);
            return await ResetAsync(feed, handler, null);
        }

        if (!history.IsCompleteSince(last))
        {
            return await ResetAsync(feed, handler, history.Position);
        }

        foreach (var missed in history.Publications)
        {
            feed.Last = new StreamPosition(missed.Offset, missed.Epoch);
            await handler.HandlePublicationAsync(missed);
        }

        Log.GapFilled(_logger, feed.Channel, history.Publications.Count);
        return true;
    }

    private async Task<bool> ResetAsync(ChannelFeed feed, IBrokerEventHandler handler, StreamPosition? position)
    {
        Log.ContinuityLost(_logger, feed.Channel);
        if (position is { } p)
        {
            feed.Last = p;
        }

        await handler.HandleStreamResetAsync(feed.Channel);
        return false;
    }

    private async Task ResyncAfterReconnectAsync()
    {
        // Twice: once soon, and once after the multiplexer has surely resubscribed every channel.
        foreach (var delay in new[] { TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1) })
        {
            try
            {
                await Task.Delay(delay, _stopping.Token);
                await ResyncAllAsync();
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception ex)
            {
                Log.ResyncFailed(_logger, ex);
            }
        }
    }

    /// <summary>Delivers whatever every subscribed channel published since this node last delivered on it.</summary>
    internal async Task ResyncAllAsync()
    {
        if (_handler is not { } handler)
        {
            return;
        }

        foreach (var feed in _feeds.Values)
        {
            await feed.Gate.WaitAsync(_stopping.Token);
            try
            {
                if (feed.Closed || feed.Last is not { } last)
                {
                    continue;
                }

                var current = await HistoryAsync(feed.Channel, new HistoryQuery { Limit = 0 }, _stopping.Token);
                if (!string.Equals(current.Position.Epoch, last.Epoch, StringComparison.Ordinal))
                {
                    await ResetAsync(feed, handler, current.Position);
                }
                else if (current.Position.Offset > last.Offset)
                {
                    await FillGapAsync(feed, handler);
                }
            }
            catch (BrokerUnavailableException ex)
            {
                Log.GapFillFailed(_logger, feed.Channel, ex.Message);
            }
            finally
            {
                feed.Gate.Release();
            }
        }
    }

    private async Task<T> RunAsync<T>(Func<IDatabase, Task<T>> call, CancellationToken cancellationToken)
    {
        if (!_connection.IsConnected)
        {
            throw new BrokerUnavailableException("The Redis backplane is not connected.") { RetryAfter = _options.BreakDuration };
        }

        return await ExecuteAsync(call, Multiplexer.GetDatabase(), cancellationToken);
    }

    /// <summary>Runs a Redis call through the circuit breaker, turning unavailability into <see cref="BrokerUnavailableException"/>.</summary>
    private async Task<T> ExecuteAsync<TState, T>(Func<TState, Task<T>> call, TState state, CancellationToken cancellationToken)
    {
        try
        {
            return await _pipeline.ExecuteAsync(static async (s, _) => await s.call(s.state), (call, state), cancellationToken);
        }
        catch (BrokenCircuitException ex)
        {
            throw new BrokerUnavailableException("The Redis backplane is failing; publishing is paused.", ex) { RetryAfter = _options.BreakDuration };
        }
        catch (Exception ex) when (RedisFailures.IsUnavailable(ex))
        {
            throw RedisFailures.Unavailable(ex, _options.BreakDuration);
        }
    }

    private async Task<T> Guard<T>(Func<Task<T>> call)
    {
        if (!_connection.IsConnected)
        {
            throw new BrokerUnavailableException("The Redis backplane is not connected.") { RetryAfter = _options.BreakDuration };
        }

        return await RedisFailures.GuardAsync(() => call().WaitAsync(_options.OperationTimeout), _options.BreakDuration);
    }

    private async Task SafeUnsubscribeAsync(ChannelMessageQueue queue)
    {
        try
        {
            await queue.UnsubscribeAsync();
        }
        catch (Exception ex) when (ex is RedisException or ObjectDisposedException)
        {
            // The multiplexer forgets the subscription either way; Redis drops it with the connection.
            Log.UnsubscribeFailed(_logger, queue.Channel.ToString(), ex.Message);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1000, LogLevel.Warning, "Channel '{Channel}' changed epoch from {OldEpoch} to {NewEpoch}: its history was lost.")]
        public static partial void EpochChanged(ILogger logger, string channel, string oldEpoch, string newEpoch);

        [LoggerMessage(1001, LogLevel.Information, "Filled a gap of {Count} publications on channel '{Channel}' from history.")]
        public static partial void GapFilled(ILogger logger, string channel, int count);

        [LoggerMessage(1002, LogLevel.Warning, "Channel '{Channel}' lost continuity (history no longer holds what was missed); subscribers will recover.")]
        public static partial void ContinuityLost(ILogger logger, string channel);

        [LoggerMessage(1003, LogLevel.Warning, "Could not fill a gap on channel '{Channel}': {Message}")]
        public static partial void GapFillFailed(ILogger logger, string channel, string message);

        [LoggerMessage(1004, LogLevel.Error, "Delivering on channel '{Channel}' failed.")]
        public static partial void DeliveryFailed(ILogger logger, string channel, Exception exception);

        [LoggerMessage(1005, LogLevel.Warning, "Ignored an unreadable envelope on channel '{Channel}'.")]
        public static partial void BadEnvelope(ILogger logger, string channel);

        [LoggerMessage(1006, LogLevel.Warning, "Resync after a Redis reconnect failed.")]
        public static partial void ResyncFailed(ILogger logger, Exception exception);

        [LoggerMessage(1007, LogLevel.Debug, "Unsubscribing {Channel} failed: {Message}")]
        public static partial void UnsubscribeFailed(ILogger logger, string channel, string message);
    }
}
