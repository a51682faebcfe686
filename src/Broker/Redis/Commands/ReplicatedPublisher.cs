using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace PushService.Broker.Redis.Commands;

/// <summary>
/// Publishes so that an answered publish survives a failover (<see cref="RedisBrokerOptions.MinReplicas"/>): the
/// publish script stores the publication without announcing it, <c>WAIT</c> waits until that many replicas hold it,
/// and only then is its envelope published to the nodes. Redis replicates asynchronously, so a primary that dies right
/// after a write can take it with it; in this order no node has delivered such a publication, and the promoted replica
/// gives its offset to the next one, which the nodes then take as new.
/// </summary>
/// <remarks>
/// <c>WAIT</c> covers the writes made on the connection that sends it and blocks that connection until it returns, so
/// it runs on a multiplexer of its own: StackExchange.Redis does not support blocking commands on the shared one, whose
/// every caller would wait behind it. Publications still go out in parallel (each <c>WAIT</c> also covers the writes
/// before it); each costs two round trips more than the plain publish.
/// </remarks>
internal sealed partial class ReplicatedPublisher : IPublishPath
{
    private readonly RedisConnection _connection;
    private readonly PublishCommands _commands;
    private readonly RedisBrokerOptions _options;
    private readonly ILogger _logger;
    private ConnectionMultiplexer? _multiplexer;

    /// <summary>A publisher whose envelopes are announced on <paramref name="connection"/>, the broker's shared multiplexer.</summary>
    public ReplicatedPublisher(RedisConnection connection, PublishCommands commands, ILogger logger)
    {
        _connection = connection;
        _commands = commands;
        _options = commands.Options;
        _logger = logger;
    }

    public bool IsConnected => _multiplexer?.IsConnected ?? false;

    // Called straight through to the pipeline, as before its own multiplexer existed: a publish while it is down fails
    // there, and the circuit breaker counts it.
    bool IPublishPath.CanPublish => true;

    bool IPublishPath.IsReady => IsConnected;

    bool IPublishPath.OwnConnectionsUp => IsConnected;

    long IPublishPath.Reconnects => 0;

    /// <summary>Stores the publication, waits for the replicas, then publishes its envelope as the publish script does otherwise.</summary>
    public Task<PublishReply> PublishAsync(string channel, ReadOnlyMemory<byte> data, PublishOptions options) =>
        PublishAsync(_commands.For(channel, data, options, announce: false), async reply =>
        {
            var envelope = RedisEnvelope.Publication(reply.Offset, reply.Epoch!, RedisEnvelope.Context(options.TraceParent, options.AcceptedAtTicks), data.Span);
            var multiplexer = await _connection.GetAsync();
            await multiplexer.GetSubscriber().PublishAsync(_connection.PubSubChannel(_commands.Keys.PubSub(channel)), envelope);
        });

    public async Task StartAsync(SocketManager socketManager)
    {
        var configuration = RedisConnection.Configure(_options, socketManager);
        configuration.ClientName += "-replicated";
        _multiplexer = await ConnectionMultiplexer.ConnectAsync(configuration);
        Log.Started(_logger, _options.MinReplicas, (int)_options.ReplicaTimeout.TotalMilliseconds);
    }

    /// <summary>
    /// Stores the publication and waits for the replicas; then <paramref name="announce"/> publishes its envelope.
    /// A repeated idempotency key is waited for and announced again too: its first attempt may have stopped before
    /// either, and the nodes drop an envelope they already delivered.
    /// </summary>
    /// <exception cref="BrokerUnavailableException">Too few replicas acknowledged it in time.</exception>
    public async Task<PublishReply> PublishAsync(PublishCommand command, Func<PublishReply, Task> announce)
    {
        var multiplexer = _multiplexer ?? throw new InvalidOperationException("The replicated publisher was not started.");
        var reply = PublishCommand.Read(await multiplexer.GetDatabase().ScriptEvaluateAsync(RedisScripts.Publish, command.Keys, command.Arguments));
        if (reply.Status < 0)
        {
            return reply;
        }

        long acknowledged;
        try
        {
            // The server that stored it: under Redis Cluster the channel's slot names it, elsewhere it is the primary.
            var server = multiplexer.GetServer(command.MetaKey);
            acknowledged = (long)await server.ExecuteAsync("WAIT", _options.MinReplicas, (long)_options.ReplicaTimeout.TotalMilliseconds);
        }
        catch (Exception ex) when (ex is RedisException or InvalidOperationException)
        {
            // Right after a failover the slot map can still name the old primary, now a replica, which refuses WAIT;
            // or the server is gone. Either way replication is not confirmed: the publish must not be answered 200.
            throw new BrokerUnavailableException($"Could not confirm the publication's replication: {ex.Message}", ex) { RetryAfter = _options.BreakDuration };
        }

        if (acknowledged < _options.MinReplicas)
        {
            Log.TooFewReplicas(_logger, acknowledged, _options.MinReplicas);
            throw new BrokerUnavailableException(
                $"Only {acknowledged} of {_options.MinReplicas} replicas acknowledged the publication within {_options.ReplicaTimeout.TotalMilliseconds} ms.")
            {
                RetryAfter = _options.BreakDuration,
            };
        }

        await announce(reply);
        return reply;
    }

    public async ValueTask DisposeAsync()
    {
        if (_multiplexer is { } multiplexer)
        {
            try
            {
                await multiplexer.CloseAsync(allowCommandsToComplete: false);
            }
            catch (Exception ex) when (ex is RedisException or ObjectDisposedException)
            {
            }

            multiplexer.Dispose();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1120, LogLevel.Information, "Publishes are answered once {Replicas} replicas hold them (WAIT, {TimeoutMs} ms at most).")]
        public static partial void Started(ILogger logger, int replicas, int timeoutMs);

        [LoggerMessage(1121, LogLevel.Debug, "A publication was acknowledged by {Acknowledged} of {Required} replicas in time; answered 503.")]
        public static partial void TooFewReplicas(ILogger logger, long acknowledged, int required);
    }
}
