using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace PushService.Broker.Redis;

/// <summary>
/// The one multiplexer the broker, presence store and control bus share. It connects without failing when Redis is
/// down (and keeps reconnecting), and fails commands fast while disconnected instead of queueing them, so a publish
/// during an outage gets its 503 at once.
/// </summary>
public sealed partial class RedisConnection : IAsyncDisposable
{
    private readonly RedisBrokerOptions _options;
    private readonly ILogger<RedisConnection> _logger;
    private readonly Lazy<Task<ConnectionMultiplexer>> _multiplexer;

    /// <summary>The name every connection of the node gives Redis (<c>CLIENT SETNAME</c>) unless the configuration names one.</summary>
    internal const string DefaultClientName = "pushservice";

    /// <summary>Creates the connection; nothing connects until first use.</summary>
    public RedisConnection(IOptions<RedisBrokerOptions> options, ILogger<RedisConnection> logger)
    {
        _options = options.Value;
        _logger = logger;
        Keys = new RedisKeys(_options.KeyPrefix);
        _multiplexer = new Lazy<Task<ConnectionMultiplexer>>(ConnectAsync);
    }

    internal RedisKeys Keys { get; }

    internal bool Sharded { get; private set; }

    /// <summary>Where the multiplexer reads (see <see cref="RedisBrokerOptions.DedicatedIoThreads"/>); set on connecting.</summary>
    internal SocketManager? SocketManager { get; private set; }

    /// <summary>True while the multiplexer has a working connection.</summary>
    public bool IsConnected => _multiplexer.IsValueCreated && _multiplexer.Value.IsCompletedSuccessfully && _multiplexer.Value.Result.IsConnected;

    /// <summary>The multiplexer, connecting it on first use.</summary>
    public Task<ConnectionMultiplexer> GetAsync() => _multiplexer.Value;

    /// <summary>
    /// The configuration every multiplexer of the node is made with: it connects without failing when Redis is down and
    /// keeps reconnecting, fails commands fast while disconnected, and times calls out after the operation timeout.
    /// </summary>
    internal static ConfigurationOptions Configure(RedisBrokerOptions options, SocketManager socketManager)
    {
        var configuration = ConfigurationOptions.Parse(options.Configuration);
        configuration.AbortOnConnectFail = false;
        configuration.BacklogPolicy = BacklogPolicy.FailFast;
        configuration.SocketManager = socketManager;
        configuration.ClientName ??= DefaultClientName;
        var timeoutMs = (int)options.OperationTimeout.TotalMilliseconds;
        configuration.AsyncTimeout = timeoutMs;
        configuration.SyncTimeout = timeoutMs;
        configuration.ConnectTimeout = Math.Max(timeoutMs, 1000);
        configuration.ReconnectRetryPolicy = new ExponentialRetry(250, 2000);
        return configuration;
    }

    private async Task<ConnectionMultiplexer> ConnectAsync()
    {
        SocketManager = _options.DedicatedIoThreads ? SocketManager.Shared : SocketManager.ThreadPool;
        var configuration = Configure(_options, SocketManager);
        var multiplexer = await ConnectionMultiplexer.ConnectAsync(configuration);

        // The multiplexer can report itself connected a moment before its subscription connection is: a SUBSCRIBE then
        // fails at once (the backlog policy is fail-fast), so the first subscribers of a node just started would be
        // refused. Wait for it as long as a connect may take; a Redis that is down is not waited for.
        var subscriber = multiplexer.GetSubscriber();
        var deadline = Environment.TickCount64 + configuration.ConnectTimeout;
        while (multiplexer.IsConnected && !subscriber.IsConnected() && Environment.TickCount64 < deadline)
        {
            await Task.Delay(10);
        }

        multiplexer.ConnectionFailed += (_, e) => Log.ConnectionFailed(_logger, e.EndPoint?.ToString() ?? "?", e.ConnectionType.ToString(), e.FailureType.ToString());
        multiplexer.ConnectionRestored += (_, e) => Log.ConnectionRestored(_logger, e.EndPoint?.ToString() ?? "?", e.ConnectionType.ToString());
        Sharded = _options.ShardedPubSub ?? multiplexer.GetServers().Any(s => s.ServerType == ServerType.Cluster);
        Log.Connected(_logger, multiplexer.IsConnected, Sharded);
        return multiplexer;
    }

    /// <summary>A pub/sub channel name of the kind this connection uses.</summary>
    internal RedisChannel PubSubChannel(string name) => Sharded ? RedisChannel.Sharded(name) : RedisChannel.Literal(name);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_multiplexer.IsValueCreated)
        {
            try
            {
                var multiplexer = await _multiplexer.Value;
                await multiplexer.CloseAsync(allowCommandsToComplete: false);
                multiplexer.Dispose();
            }
            catch (Exception ex) when (ex is RedisException or ObjectDisposedException)
            {
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1100, LogLevel.Information, "Redis backplane multiplexer created (connected: {Connected}, sharded pub/sub: {Sharded}).")]
        public static partial void Connected(ILogger logger, bool connected, bool sharded);

        [LoggerMessage(1101, LogLevel.Warning, "Redis connection to {EndPoint} ({ConnectionType}) failed: {FailureType}.")]
        public static partial void ConnectionFailed(ILogger logger, string endPoint, string connectionType, string failureType);

        [LoggerMessage(1102, LogLevel.Information, "Redis connection to {EndPoint} ({ConnectionType}) restored.")]
        public static partial void ConnectionRestored(ILogger logger, string endPoint, string connectionType);
    }
}
