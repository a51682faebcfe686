using StackExchange.Redis;

namespace PushService.Broker.Redis;

/// <summary>
/// Every Redis key and pub/sub channel the broker uses, in one place (as SignalR's RedisChannels). A channel's keys share
/// the hash tag <c>{channel}</c>, so in Redis Cluster its position, history, idempotency keys and pub/sub channel sit on one
/// slot and the publish script may touch them all. Channel names cannot contain braces, so the tag is always the whole name.
/// </summary>
internal sealed class RedisKeys
{
    private readonly string _prefix;

    public RedisKeys(string prefix) => _prefix = prefix;

    /// <summary>Hash: <c>e</c> epoch, <c>o</c> last offset.</summary>
    public RedisKey Meta(string channel) => $"{_prefix}:{{{channel}}}:m";

    /// <summary>Stream: the channel's history, entries <c>o</c> offset, <c>x</c> expiry (ms), <c>d</c> data.</summary>
    public RedisKey Stream(string channel) => $"{_prefix}:{{{channel}}}:s";

    /// <summary>String: <c>offset:epoch:sha1(data)</c> of the first publish with this idempotency key.</summary>
    public RedisKey Idempotency(string channel, string key) => $"{_prefix}:{{{channel}}}:i:{key}";

    /// <summary>The channel's pub/sub channel name.</summary>
    public string PubSub(string channel) => $"{_prefix}:{{{channel}}}:c";

    /// <summary>Sorted set of presence entries by expiry (ms).</summary>
    public RedisKey PresenceExpiry(string channel) => $"{_prefix}:{{{channel}}}:pz";

    /// <summary>Hash of presence entries: client id to <c>user</c>.</summary>
    public RedisKey PresenceInfo(string channel) => $"{_prefix}:{{{channel}}}:ph";

    /// <summary>Pub/sub channel for commands to every node.</summary>
    public string ControlBroadcast => $"{_prefix}:control";

    /// <summary>Pub/sub channel for replies to one node.</summary>
    public string ControlReplies(string node) => $"{_prefix}:control:{node}";

    /// <summary>Sorted set of node ids by last heartbeat (ms).</summary>
    public RedisKey Nodes => $"{_prefix}:nodes";

    /// <summary>String: one node's last report, with a time to live.</summary>
    public RedisKey Node(string node) => $"{_prefix}:node:{node}";

    /// <summary>The channel name a pub/sub channel name was made from.</summary>
    public string? ChannelOf(string pubSubChannel)
    {
        var start = _prefix.Length + 2;
        var end = pubSubChannel.Length - 3;
        return end > start && pubSubChannel.EndsWith("}:c", StringComparison.Ordinal) ? pubSubChannel[start..end] : null;
    }
}
