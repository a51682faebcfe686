using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using PushService.Broker.Control;
using StackExchange.Redis;

namespace PushService.Broker.Redis;

/// <summary>
/// The control plane over Redis: node reports as keys with a time to live plus a sorted set of node ids by heartbeat;
/// commands on one broadcast pub/sub channel, replies on a channel per node. A command waits for a reply from every live
/// node, or for its timeout.
/// </summary>
public sealed partial class RedisControlPlane : IControlPlane, IAsyncDisposable
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(1);
    private readonly ConcurrentDictionary<string, PendingCommand> _pending = new(StringComparer.Ordinal);
    private readonly RedisConnection _connection;
    private readonly TimeProvider _time;
    private readonly ILogger<RedisControlPlane> _logger;
    private TimeSpan _reportTtl = TimeSpan.FromSeconds(10);
    private IControlHandler? _handler;
    private string _nodeId = "";
    private ChannelMessageQueue? _commands;
    private ChannelMessageQueue? _replies;

    /// <summary>Creates the control plane.</summary>
    public RedisControlPlane(RedisConnection connection, TimeProvider time, ILogger<RedisControlPlane> logger)
    {
        _connection = connection;
        _time = time;
        _logger = logger;
    }

    /// <inheritdoc />
    public async Task StartAsync(string nodeId, IControlHandler handler, CancellationToken cancellationToken)
    {
        _nodeId = nodeId;
        _handler = handler;
        var subscriber = (await _connection.GetAsync()).GetSubscriber();

        // Control channels are few and node-wide: plain pub/sub, also under Redis Cluster.
        _commands = await subscriber.SubscribeAsync(RedisChannel.Literal(_connection.Keys.ControlBroadcast));
        _commands.OnMessage(OnCommandAsync);
        _replies = await subscriber.SubscribeAsync(RedisChannel.Literal(_connection.Keys.ControlReplies(nodeId)));
        _replies.OnMessage(OnReply);
    }

    /// <inheritdoc />
    public async Task ReportAsync(NodeReport report, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        _reportTtl = ttl;
        var db = (await _connection.GetAsync()).GetDatabase();
        var json = JsonSerializer.SerializeToUtf8Bytes(report);
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        await RedisFailures.GuardAsync(() => Task.WhenAll(
            db.StringSetAsync(_connection.Keys.Node(report.Node), json, ttl),
            db.SortedSetAddAsync(_connection.Keys.Nodes, report.Node, now),
            db.SortedSetRemoveRangeByScoreAsync(_connection.Keys.Nodes, double.NegativeInfinity, now - (ttl.TotalMilliseconds * 3))), RetryAfter);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<NodeReport>> NodesAsync(CancellationToken cancellationToken = default)
    {
        var db = (await _connection.GetAsync()).GetDatabase();
        var since = _time.GetUtcNow().ToUnixTimeMilliseconds() - _reportTtl.TotalMilliseconds;
        var ids = await RedisFailures.GuardAsync(() => db.SortedSetRangeByScoreAsync(_connection.Keys.Nodes, since, double.PositiveInfinity), RetryAfter);

        // One GET per node: under Redis Cluster node keys live on different slots, so no MGET.
        var reports = await RedisFailures.GuardAsync(() => Task.WhenAll(ids.Select(id => db.StringGetAsync(_connection.Keys.Node(id!)))), RetryAfter);
        var result = new List<NodeReport>(reports.Length);
        foreach (var value in reports)
        {
            if (value.HasValue && JsonSerializer.Deserialize<NodeReport>((byte[])value!) is { } report)
            {
                result.Add(report);
            }
        }

        return result;
    }

    /// <inheritdoc />
    public async Task<int> DisconnectUserAsync(string user, bool reconnect, CancellationToken cancellationToken = default)
    {
        var nodes = await NodesAsync(cancellationToken);
        var command = new ControlCommand("disconnect", Guid.NewGuid().ToString("N"), _nodeId, user, reconnect);
        var pending = new PendingCommand(Math.Max(1, nodes.Count));
        _pending[command.Id] = pending;
        try
        {
            var subscriber = (await _connection.GetAsync()).GetSubscriber();
            await RedisFailures.GuardAsync(() => subscriber.PublishAsync(RedisChannel.Literal(_connection.Keys.ControlBroadcast), JsonSerializer.SerializeToUtf8Bytes(command)), RetryAfter);
            await Task.WhenAny(pending.AllAnswered, Task.Delay(CommandTimeout, _time, cancellationToken));
            return pending.Total;
        }
        finally
        {
            _pending.TryRemove(command.Id, out _);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var queue in new[] { _commands, _replies })
        {
            if (queue is not null)
            {
                try
                {
                    await queue.UnsubscribeAsync();
                }
                catch (Exception ex) when (ex is RedisException or ObjectDisposedException)
                {
                }
            }
        }
    }

    private async Task OnCommandAsync(ChannelMessage message)
    {
        try
        {
            var command = JsonSerializer.Deserialize<ControlCommand>((byte[])message.Message!);
            if (command is null || _handler is null || command.Type != "disconnect")
            {
                return;
            }

            var count = await _handler.DisconnectUserAsync(command.User, command.Reconnect);
            var reply = JsonSerializer.SerializeToUtf8Bytes(new ControlReply(command.Id, _nodeId, count));
            var subscriber = (await _connection.GetAsync()).GetSubscriber();
            await subscriber.PublishAsync(RedisChannel.Literal(_connection.Keys.ControlReplies(command.From)), reply);
        }
        catch (Exception ex) when (ex is JsonException or RedisException)
        {
            Log.CommandFailed(_logger, ex);
        }
    }

    private void OnReply(ChannelMessage message)
    {
        try
        {
            if (JsonSerializer.Deserialize<ControlReply>((byte[])message.Message!) is { } reply && _pending.TryGetValue(reply.Id, out var pending))
            {
                pending.Add(reply.Count);
            }
        }
        catch (JsonException ex)
        {
            Log.CommandFailed(_logger, ex);
        }
    }

    private sealed record ControlCommand(string Type, string Id, string From, string User, bool Reconnect);

    private sealed record ControlReply(string Id, string Node, int Count);

    private sealed class PendingCommand(int expected)
    {
        private readonly TaskCompletionSource _all = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _answers;
        private int _total;

        public Task AllAnswered => _all.Task;

        public int Total => Volatile.Read(ref _total);

        public void Add(int count)
        {
            Interlocked.Add(ref _total, count);
            if (Interlocked.Increment(ref _answers) >= expected)
            {
                _all.TrySetResult();
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1200, LogLevel.Warning, "A control command failed.")]
        public static partial void CommandFailed(ILogger logger, Exception exception);
    }
}
