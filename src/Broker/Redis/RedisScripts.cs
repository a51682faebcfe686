namespace PushService.Broker.Redis;

/// <summary>
/// The Lua scripts of the broker. StackExchange.Redis sends a script once and runs it by SHA afterwards (and again in
/// full after a NOSCRIPT), as the broker's own command connection does with the publish script (it loads it when it
/// connects), so each publish costs one round trip carrying only the arguments.
/// </summary>
internal static class RedisScripts
{
    /// <summary>
    /// Publish: check the idempotency key, take the next offset, append to history (trimmed by size and age), remember the
    /// idempotency key, and publish the envelope, atomically. Returns <c>{1, offset, epoch}</c>, <c>{0, offset, epoch}</c>
    /// for a repeated idempotency key, or <c>{-1}</c> when that key came with other data.
    /// KEYS: meta, stream, idempotency key. ARGV: data, history size, history ttl ms, idempotency window ms (0: no key),
    /// position ttl ms, pub/sub channel, trace parent, new epoch, how to announce it (1: SPUBLISH, 0: PUBLISH, -: not
    /// here, the broker publishes once replicas acknowledged it).
    /// </summary>
    public const string Publish = """
        local sha
        if tonumber(ARGV[4]) > 0 then
          sha = redis.sha1hex(ARGV[1])
          local prev = redis.call('GET', KEYS[3])
          if prev then
            local o, e, s = string.match(prev, '^(%d+):([^:]*):(%x+)$')
            if s ~= sha then return {-1} end
            return {0, tonumber(o), e}
          end
        end
        local epoch = redis.call('HGET', KEYS[1], 'e')
        if not epoch then
          epoch = ARGV[8]
          redis.call('HSET', KEYS[1], 'e', epoch)
        end
        local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
        redis.call('PEXPIRE', KEYS[1], ARGV[5])
        local size = tonumber(ARGV[2])
        local ttl = tonumber(ARGV[3])
        if size > 0 and ttl > 0 then
          local t = redis.call('TIME')
          local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
          redis.call('XADD', KEYS[2], 'MAXLEN', size, '*', 'o', offset, 'x', now + ttl, 'd', ARGV[1])
          redis.call('XTRIM', KEYS[2], 'MINID', now - ttl)
          redis.call('PEXPIRE', KEYS[2], ttl)
        end
        if sha then
          redis.call('SET', KEYS[3], offset .. ':' .. epoch .. ':' .. sha, 'PX', ARGV[4])
        end
        if ARGV[9] ~= '-' then
          local envelope = 'm\n' .. offset .. '\n' .. epoch .. '\n' .. ARGV[7] .. '\n' .. ARGV[1]
          if ARGV[9] == '1' then
            redis.call('SPUBLISH', ARGV[6], envelope)
          else
            redis.call('PUBLISH', ARGV[6], envelope)
          end
        end
        return {1, offset, epoch}
        """;

    /// <summary>
    /// Position and history in one consistent read. Creates the channel's epoch when it has none, so a position read before
    /// the first publication stays valid after it. Returns <c>{epoch, offset, o1, d1, o2, d2, …}</c> in offset order,
    /// skipping expired entries. KEYS: meta, stream. ARGV: new epoch, position ttl ms, mode (since|newest), since offset,
    /// limit (-1: all), since epoch.
    /// </summary>
    public const string History = """
        local epoch = redis.call('HGET', KEYS[1], 'e')
        if not epoch then
          epoch = ARGV[1]
          redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
        end
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        local offset = tonumber(redis.call('HGET', KEYS[1], 'o') or '0')
        local result = {epoch, offset}
        local limit = tonumber(ARGV[5])
        if limit == 0 then return result end
        local entries
        local since = -1
        if ARGV[3] == 'since' then
          if ARGV[6] ~= epoch then return result end
          since = tonumber(ARGV[4])
          local missed = offset - since
          if missed <= 0 then return result end
          entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', missed)
        elseif limit > 0 then
          entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', limit)
        else
          entries = redis.call('XREVRANGE', KEYS[2], '+', '-')
        end
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local taken = 0
        for i = #entries, 1, -1 do
          local fields = entries[i][2]
          local o, x, d
          for f = 1, #fields, 2 do
            if fields[f] == 'o' then o = tonumber(fields[f + 1])
            elseif fields[f] == 'x' then x = tonumber(fields[f + 1])
            elseif fields[f] == 'd' then d = fields[f + 1] end
          end
          if o and d and o > since and (not x or x > now) then
            result[#result + 1] = o
            result[#result + 1] = d
            taken = taken + 1
            if limit > 0 and taken == limit then break end
          end
        end
        return result
        """;

    /// <summary>Adds or refreshes a presence entry. KEYS: expiry zset, info hash. ARGV: client, user, ttl ms.</summary>
    public const string PresenceAdd = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local ttl = tonumber(ARGV[3])
        redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
        redis.call('PEXPIRE', KEYS[1], ttl)
        redis.call('PEXPIRE', KEYS[2], ttl)
        return 1
        """;

    /// <summary>Removes expired presence entries and returns <c>{client1, user1, …}</c>. KEYS: expiry zset, info hash.</summary>
    public const string PresenceGet = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
        for i = 1, #expired do
          redis.call('ZREM', KEYS[1], expired[i])
          redis.call('HDEL', KEYS[2], expired[i])
        end
        return redis.call('HGETALL', KEYS[2])
        """;
}
