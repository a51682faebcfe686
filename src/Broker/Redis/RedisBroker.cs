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
using PushService.Broker.Sequencing;
using StackExchange.Redis;

namespace PushService.Broker.Redis;

/// <summary>
/// The Redis backplane. A publish is one Lua script (offset, history, idempotency, PUBLISH) run by SHA; each node holds
/// one Redis subscription per channel with local subscribers. How each reaches Redis is chosen once at start: the
/// publish path (<see cref="IPublishPath"/>: the library, the broker's own RESP connection, or stored, replicated, then
/// announced) and the subscription path (<see cref="ISubscriptionPath"/>: the library's queues or the broker's own
/// connection read on the socket's thread). Whatever the path, each channel's <see cref="ChannelSequencer"/> remembers
/// the last offset the node delivered and fills any gap from history before delivering newer publications, after an
/// offset gap or a reconnect, so subscribers see gap-free order without resubscribing; it declares continuity lost only
/// when history says what was missed is gone. Calls go through a resilience pipeline (a circuit breaker): while Redis
/// is down they fail fast with <see cref="BrokerUnavailableException"/>. A call that Redis does not answer fails after
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
    private readonly SequencerProgress _progress = new();
    private readonly SequencerSettings _sequencing;
    private IBrokerEventHandler? _handler;
    private ConnectionMultiplexer? _multiplexer;
    private IPublishPath? _publishing;
    private ISubscriptionPath? _subscribing;
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
        _sequencing = new SequencerSettings { MaxHeld = _options.MaxHeldPublications, MaxRetryDelay = _options.HistoryRetryMaxDelay };
    }

    /// <inheritdoc />
    public bool IsAvailable => CanPublishAndDeliver && _circuit.CircuitState is CircuitState.Closed or CircuitState.HalfOpen;

    // What publishing and delivery need up; the broker's own command connection is not among them, since publishes fall
    // back to the multiplexer while it reconnects.
    private bool CanPublishAndDeliver => _connection.IsConnected && (_subscribing?.IsConnected ?? true) && (_publishing?.IsReady ?? true);

    /// <inheritdoc />
    public bool IsCaughtUp => _progress.Behind == 0;

    /// <inheritdoc />
    public BrokerStatistics Statistics => new()
    {
        Connected = CanPublishAndDeliver && (_publishing?.OwnConnectionsUp ?? true),
        Reconnects = Interlocked.Read(ref _restored) + (_subscribing?.Reconnects ?? 0) + (_publishing?.Reconnects ?? 0),
        GapFills = _progress.Filled,
        ContinuityResets = _progress.Resets,
        ChannelsBehind = _progress.Behind,
        Circuit = (BrokerCircuitState)(int)_circuit.CircuitState,
    };

    // Connections of the multiplexer made again (interactive and subscription ones alike).
    private long _restored;

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

        // The broker's own connections speak plain RESP2 to one server; TLS, Sentinel and Cluster stay with the library.
        var configuration = ConfigurationOptions.Parse(_options.Configuration);
        var plain = !_connection.Sharded && configuration.EndPoints.Count == 1 && !configuration.Ssl && string.IsNullOrEmpty(configuration.ServiceName);
        var server = plain
            ? new RespServer(configuration.EndPoints[0], configuration.User, configuration.Password, configuration.DefaultDatabase,
                configuration.ClientName ?? RedisConnection.DefaultClientName)
            : null;

        _multiplexer.ConnectionRestored += (_, e) =>
        {
            Interlocked.Increment(ref _restored);

            // Publishes go through the multiplexer while the broker's command connection is down: once it is back, the
            // broker's own connections try again at once rather than at the end of their backoff, so that this node's
            // pub/sub is not the last to return.
            server?.SignalReached();

            // Pub/sub is at most once: whatever was published while this node was cut off is read back from history.
            _ = ResyncAfterReconnectAsync();
        };

        var commands = new PublishCommands(Keys, _options, _connection.Sharded);
        var library = new LibraryPublishPath(_connection, commands);

        if (_options.MinReplicas > 0)
        {
            var replicated = new ReplicatedPublisher(_connection, commands, _logger);
            await replicated.StartAsync(_connection.SocketManager ?? SocketManager.ThreadPool);
            _publishing = replicated;
        }
        else if (server is not null && _options.BypassesLibraryForPublish)
        {
            var own = new CommandConnection(server, [RedisScripts.Publish], _options.OperationTimeout, _logger);
            await own.StartAsync();
            _publishing = new RespPublishPath(own, library, commands);
        }
        else
        {
            _publishing = library;
        }

        if (server is not null && _options.BypassesLibraryForSubscriptions)
        {
            var own = new RespSubscriptionPath(server, _options, FeedOf, OnMessageAsync, () => [.. _feeds.Keys.Select(Keys.PubSub)],
                () => _ = ResyncAfterReconnectAsync(), _logger);
            _subscribing = own;
            await own.StartAsync();
        }
        else
        {
            _subscribing = new LibrarySubscriptionPath(_connection, OnMessageAsync, _options, _logger);
        }
    }

    /// <inheritdoc />
    public async ValueTask<PublishResult> PublishAsync(string channel, ReadOnlyMemory<byte> data, PublishOptions options, CancellationToken cancellationToken = default)
    {
        var path = Publishing;
        if (!path.CanPublish)
        {
            throw NotConnected();
        }

        var reply = await ExecuteAsync(static s => s.path.PublishAsync(s.channel, s.data, s.options), (path, channel, data, options), cancellationToken);
        if (reply.Status < 0)
        {
            throw new IdempotencyConflictException($"The idempotency key '{options.IdempotencyKey}' was already used on channel '{channel}' with different data.");
        }

        return new PublishResult(new StreamPosition(reply.Offset, reply.Epoch!), Duplicate: reply.Status == 0);
    }

    /// <inheritdoc />
    public async ValueTask<StreamPosition> SubscribeAsync(string channel, CancellationToken cancellationToken = default)
    {
        var feed = new ChannelFeed(new ChannelSequencer(channel, ReadHistoryAsync, Handler, _sequencing, _progress, _logger));
        if (!_feeds.TryAdd(channel, feed))
        {
            throw new InvalidOperationException($"Channel '{channel}' is already subscribed on this node.");
        }

        var pubSubName = Keys.PubSub(channel);
        try
        {
            await Subscribing.SubscribeAsync(feed, pubSubName);

            // Read after the subscription is confirmed: anything published later arrives through it, and what arrived
            // meanwhile the sequencer held.
            var position = (await HistoryAsync(channel, new HistoryQuery { Limit = 0 }, cancellationToken)).Position;
            _ = feed.Sequencer.Start(position);
            return position;
        }
        catch
        {
            _feeds.TryRemove(new KeyValuePair<string, ChannelFeed>(channel, feed));
            feed.Sequencer.Close();
            await Subscribing.UnsubscribeAsync(feed, pubSubName);
            throw;
        }
    }

    /// <inheritdoc />
    public async ValueTask UnsubscribeAsync(string channel, CancellationToken cancellationToken = default)
    {
        if (_feeds.TryRemove(channel, out var feed))
        {
            feed.Sequencer.Close();
            await Subscribing.UnsubscribeAsync(feed, Keys.PubSub(channel));
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
        if (_subscribing is { } subscribing)
        {
            await subscribing.DisposeAsync();
        }

        if (_publishing is { } publishing)
        {
            await publishing.DisposeAsync();
        }

        foreach (var feed in _feeds.Values)
        {
            feed.Sequencer.Close();
        }

        _feeds.Clear();
        _stopping.Dispose();
    }

    /// <summary>Whether pub/sub messages are read on the broker's own connection (see <see cref="RedisBrokerOptions.BypassLibrarySubscriptions"/>).</summary>
    internal bool ReadsSubscriptionsDirectly => _subscribing is RespSubscriptionPath;

    /// <summary>How many times the broker's own subscription connection was made (0 without one).</summary>
    internal int SubscriptionConnects => (_subscribing as RespSubscriptionPath)?.Connects ?? 0;

    /// <summary>Whether publications are run on the broker's own connection (see <see cref="RedisBrokerOptions.BypassLibraryPublish"/>).</summary>
    internal bool PublishesDirectly => _publishing is RespPublishPath;

    /// <summary>How many times the broker's own command connection was made (0 without one).</summary>
    internal int CommandConnects => (_publishing as RespPublishPath)?.Connects ?? 0;

    /// <summary>Whether publishes wait for replicas (see <see cref="RedisBrokerOptions.MinReplicas"/>).</summary>
    internal bool WaitsForReplicas => _publishing is ReplicatedPublisher;

    /// <summary>How many commands were sent on the broker's own command connection (0 without one).</summary>
    internal long DirectCommands => (_publishing as RespPublishPath)?.Sent ?? 0;

    private IPublishPath Publishing => _publishing ?? throw new InvalidOperationException("The broker was not started.");

    private ISubscriptionPath Subscribing => _subscribing ?? throw new InvalidOperationException("The broker was not started.");

    private ConnectionMultiplexer Multiplexer => _multiplexer ?? throw new InvalidOperationException("The broker was not started.");

    private IBrokerEventHandler Handler => _handler ?? throw new InvalidOperationException("The broker was not started.");

    private ValueTask<HistoryResult> ReadHistoryAsync(string channel, StreamPosition since, int limit, CancellationToken cancellationToken) =>
        HistoryAsync(channel, new HistoryQuery { Since = since, Limit = limit }, cancellationToken);

    private ChannelFeed? FeedOf(string pubSubName) =>
        Keys.ChannelOf(pubSubName) is { } channel && _feeds.TryGetValue(channel, out var feed) ? feed : null;

    /// <summary>Delivery of a message read for <paramref name="feed"/>'s channel, by either subscription path.</summary>
    private async ValueTask OnMessageAsync(ChannelFeed feed, ReadOnlyMemory<byte> payload)
    {
        var sequencer = feed.Sequencer;
        if (sequencer.IsClosed)
        {
            return;
        }

        try
        {
            if (RedisEnvelope.TryReadPublication(sequencer.Channel, payload, sequencer.KnownEpoch, out var publication))
            {
                await sequencer.OfferAsync(publication!);
            }
            else if (RedisEnvelope.TryReadJoinLeave(payload.Span, out var join, out var entry))
            {
                await Handler.HandleJoinLeaveAsync(sequencer.Channel, entry!, join);
            }
            else
            {
                Log.BadEnvelope(_logger, sequencer.Channel);
            }
        }
        catch (Exception ex)
        {
            Log.DeliveryFailed(_logger, sequencer.Channel, ex);
        }
    }

    private async Task ResyncAfterReconnectAsync()
    {
        // At once, and again once the multiplexer has surely subscribed every channel again: a publication made
        // between the first catch-up and its resubscription came on no connection, and no later one may show the gap.
        ResyncAll();
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(1), _stopping.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        ResyncAll();
    }

    /// <summary>Has every subscribed channel read back what it published since this node last delivered on it.</summary>
    internal void ResyncAll()
    {
        foreach (var feed in _feeds.Values)
        {
            feed.Sequencer.RequestCatchUp();
        }
    }

    private async Task<T> RunAsync<T>(Func<IDatabase, Task<T>> call, CancellationToken cancellationToken)
    {
        if (!_connection.IsConnected)
        {
            throw NotConnected();
        }

        return await ExecuteAsync(call, Multiplexer.GetDatabase(), cancellationToken);
    }

    private BrokerUnavailableException NotConnected() =>
        new("The Redis backplane is not connected.") { RetryAfter = _options.BreakDuration };

    /// <summary>Runs a Redis call through the circuit breaker, turning unavailability into <see cref="BrokerUnavailableException"/>.</summary>
    private async Task<T> ExecuteAsync<TState, T>(Func<TState, Task<T>> call, TState state, CancellationToken cancellationToken)
    {
        // Polly's outcome-based entry point: ExecuteAsync would wrap the call in two async methods of its own (one awaiting
        // the call, one awaiting the pipeline), each a state machine on the heap for every publish that waits on Redis.
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        try
        {
            var outcome = await _pipeline.ExecuteOutcomeAsync(
                static async (_, s) =>
                {
                    try
                    {
                        return Outcome.FromResult(await s.call(s.state));
                    }
                    catch (Exception ex)
                    {
                        return Outcome.FromException<T>(ex);
                    }
                },
                context,
                (call, state));
            outcome.ThrowIfException();
            return outcome.Result!;
        }
        catch (BrokenCircuitException ex)
        {
            throw new BrokerUnavailableException("The Redis backplane is failing; publishing is paused.", ex) { RetryAfter = _options.BreakDuration };
        }
        catch (Exception ex) when (RedisFailures.IsUnavailable(ex))
        {
            throw RedisFailures.Unavailable(ex, _options.BreakDuration);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1004, LogLevel.Error, "Delivering on channel '{Channel}' failed.")]
        public static partial void DeliveryFailed(ILogger logger, string channel, Exception exception);

        [LoggerMessage(1005, LogLevel.Warning, "Ignored an unreadable envelope on channel '{Channel}'.")]
        public static partial void BadEnvelope(ILogger logger, string channel);
    }
}
