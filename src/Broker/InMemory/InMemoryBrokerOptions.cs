using System.ComponentModel.DataAnnotations;

namespace PushService.Broker.InMemory;

/// <summary>Options of the single-node in-memory broker.</summary>
public sealed class InMemoryBrokerOptions
{
    /// <summary>How long an idempotency key is remembered.</summary>
    /// <value>The default value is 5 minutes.</value>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan IdempotencyWindow { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long a channel's position (offset and epoch) is kept after its last publication once its history is empty.
    /// After that the channel starts a new epoch, as a Redis key expiring would.
    /// </summary>
    /// <value>The default value is 24 hours.</value>
    [Range(typeof(TimeSpan), "00:00:01", "365.00:00:00")]
    public TimeSpan PositionTtl { get; set; } = TimeSpan.FromHours(24);
}
