using StackExchange.Redis;

namespace PushService.Broker.Redis;

/// <summary>
/// Presence in Redis: per channel a sorted set of client ids by expiry and a hash of their users, both on the channel's
/// slot. Expired entries are dropped on read, so a node that dies takes its clients out of presence within one time to live.
/// </summary>
public sealed class RedisPresenceStore : IPresenceStore
{
    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(1);
    private readonly RedisConnection _connection;

    /// <summary>Creates the store.</summary>
    public RedisPresenceStore(RedisConnection connection) => _connection = connection;

    /// <inheritdoc />
    public async ValueTask AddAsync(string channel, PresenceEntry entry, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        var db = await DatabaseAsync();
        await RedisFailures.GuardAsync(() => db.ScriptEvaluateAsync(RedisScripts.PresenceAdd,
            [_connection.Keys.PresenceExpiry(channel), _connection.Keys.PresenceInfo(channel)],
            [entry.Client, entry.User, (long)ttl.TotalMilliseconds]), RetryAfter);
    }

    /// <inheritdoc />
    public async ValueTask RemoveAsync(string channel, string client, CancellationToken cancellationToken = default)
    {
        var db = await DatabaseAsync();
        var batch = db.CreateBatch();
        var removeExpiry = batch.SortedSetRemoveAsync(_connection.Keys.PresenceExpiry(channel), client);
        var removeInfo = batch.HashDeleteAsync(_connection.Keys.PresenceInfo(channel), client);
        batch.Execute();
        await RedisFailures.GuardAsync(() => Task.WhenAll(removeExpiry, removeInfo), RetryAfter);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<PresenceEntry>> GetAsync(string channel, CancellationToken cancellationToken = default)
    {
        var db = await DatabaseAsync();
        var result = (RedisResult[])(await RedisFailures.GuardAsync(() => db.ScriptEvaluateAsync(RedisScripts.PresenceGet,
            [_connection.Keys.PresenceExpiry(channel), _connection.Keys.PresenceInfo(channel)]), RetryAfter))!;
        var entries = new List<PresenceEntry>(result.Length / 2);
        for (var i = 0; i + 1 < result.Length; i += 2)
        {
            entries.Add(new PresenceEntry((string)result[i]!, (string)result[i + 1]!));
        }

        return entries;
    }

    private async Task<IDatabase> DatabaseAsync()
    {
        var multiplexer = await _connection.GetAsync();
        if (!multiplexer.IsConnected)
        {
            throw new BrokerUnavailableException("The Redis backplane is not connected.");
        }

        return multiplexer.GetDatabase();
    }
}
