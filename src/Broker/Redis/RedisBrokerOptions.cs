using System.ComponentModel;
using System.ComponentModel.DataAnnotations;

namespace PushService.Broker.Redis;

/// <summary>Options of the Redis backplane.</summary>
public sealed class RedisBrokerOptions
{
    /// <summary>A StackExchange.Redis configuration string, for example <c>redis-0:6379,redis-1:6379,password=…</c>.</summary>
    [Required]
    public string Configuration { get; set; } = "";

    /// <summary>Prefix of every key and channel name, so several deployments can share one Redis.</summary>
    /// <value>The default value is <c>ps</c>.</value>
    [RegularExpression("^[A-Za-z0-9_.-]{1,32}$")]
    public string KeyPrefix { get; set; } = "ps";

    /// <summary>How long one Redis call may take before it counts as failed.</summary>
    /// <value>The default value is 2 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:01:00")]
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long the circuit stays open (publishes fail fast with 503) after Redis calls keep failing.</summary>
    /// <value>The default value is 1 second.</value>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:01:00")]
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long an idempotency key is remembered.</summary>
    /// <value>The default value is 5 minutes.</value>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan IdempotencyWindow { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long a channel's position (epoch and offset) is kept after its last publication.</summary>
    /// <value>The default value is 24 hours.</value>
    [Range(typeof(TimeSpan), "00:00:01", "365.00:00:00")]
    public TimeSpan PositionTtl { get; set; } = TimeSpan.FromHours(24);

    /// <summary>
    /// Replicas that must hold a publication before its publish is answered (Redis <c>WAIT</c>); 0 answers once the
    /// primary stored it. With 1 or more, a publication is announced to the nodes only after the replicas acknowledged
    /// it, so a failover (Sentinel promoting a replica, a Redis Cluster replica taking over its primary's slots) loses
    /// no publication that was answered 200, and no node ever delivers one that the new primary does not have. A publish
    /// that too few replicas acknowledged within <see cref="ReplicaTimeout"/> gets 503; it may still be stored, and a
    /// retry with the same idempotency key returns its first answer. Costs two more round trips per publish, on a
    /// connection of its own (docs/backplane.md).
    /// </summary>
    /// <value>The default value is 0.</value>
    [Range(0, 16)]
    public int MinReplicas { get; set; }

    /// <summary>How long a publish waits for <see cref="MinReplicas"/> replicas to acknowledge it.</summary>
    /// <value>The default value is 1 second.</value>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:00:30")]
    public TimeSpan ReplicaTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Publications a channel holds on this node while a gap in it waits for history to be readable again (after a
    /// Redis restart, say); past it the node drops what it holds and reads it all back from history.
    /// </summary>
    /// <value>The default value is 10000.</value>
    [Range(100, 1_000_000)]
    public int MaxHeldPublications { get; set; } = 10_000;

    /// <summary>
    /// The longest wait between two attempts to read a channel's history when filling a gap; the waits grow from
    /// 50 ms to this, with jitter. Continuity is declared lost only from what history answers, never from a failed read.
    /// </summary>
    /// <value>The default value is 1 second.</value>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:01:00")]
    public TimeSpan HistoryRetryMaxDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Use sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7) so each publication stays on its channel's shard.
    /// Null decides from the server: on for Redis Cluster, off otherwise.
    /// </summary>
    public bool? ShardedPubSub { get; set; }

    /// <summary>
    /// Read pub/sub messages on a connection of the broker's own, on the thread where they arrive, bypassing
    /// StackExchange.Redis, which hands each message between threads two or three times (a node receiving 2,000
    /// publications a second spent 57–68 µs of CPU per message that way; docs/benchmarks-history.md). Applies to a plain
    /// connection to one Redis server (one endpoint, no TLS, no Sentinel service, not sharded pub/sub); other setups
    /// subscribe through StackExchange.Redis. Unset is on.
    /// </summary>
    public bool? BypassLibrarySubscriptions { get; set; }

    /// <summary>
    /// Run the publish script on a connection of the broker's own, whose replies are read, and whose callers go on, on the
    /// thread where they arrive, bypassing StackExchange.Redis, which hands each reply between threads two or three times
    /// (docs/benchmarks-history.md). Applies where <see cref="BypassLibrarySubscriptions"/> does, unless the server is a
    /// Redis Cluster node; while the broker's own connection is reconnecting, publications go through StackExchange.Redis.
    /// Unset is on.
    /// </summary>
    public bool? BypassLibraryPublish { get; set; }

    /// <summary>The name <see cref="BypassLibrarySubscriptions"/> had before; read only when that is not set.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public bool? DirectSubscriptions { get; set; }

    /// <summary>The name <see cref="BypassLibraryPublish"/> had before; read only when that is not set.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public bool? DirectPublish { get; set; }

    // The switches in force. Unset rather than defaulted, so that a former name still counts when the new one is absent:
    // the configuration binder writes a property's current value back even when the configuration has no key for it.
    internal bool BypassesLibraryForSubscriptions => BypassLibrarySubscriptions ?? DirectSubscriptions ?? true;

    internal bool BypassesLibraryForPublish => BypassLibraryPublish ?? DirectPublish ?? true;

    /// <summary>
    /// Read Redis replies and pub/sub messages on StackExchange.Redis's own dedicated threads instead of the .NET thread
    /// pool. The thread pool saves a hand-off between threads per reply and per message (about 30% of the gateway's
    /// CPU per publication; docs/benchmarks-history.md); dedicated threads keep Redis reads going in an application that starves
    /// the thread pool with blocking calls, which the gateway does not make.
    /// </summary>
    /// <value>The default value is false.</value>
    public bool DedicatedIoThreads { get; set; }
}
