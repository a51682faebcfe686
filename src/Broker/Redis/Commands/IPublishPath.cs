namespace PushService.Broker.Redis.Commands;

/// <summary>
/// How a publication's script reaches Redis, chosen once when the broker starts: through StackExchange.Redis
/// (<see cref="LibraryPublishPath"/>), pipelined on the broker's own RESP connection (<see cref="RespPublishPath"/>), or
/// stored, replicated and only then announced (<see cref="ReplicatedPublisher"/>). The broker runs each call through
/// its circuit breaker; a path only speaks to Redis.
/// </summary>
internal interface IPublishPath : IAsyncDisposable
{
    /// <summary>False when a publish would find no connection to go on now (the broker answers unavailable at once).</summary>
    bool CanPublish { get; }

    /// <summary>False while the path cannot publish safely at all (its own connection is needed and down).</summary>
    bool IsReady { get; }

    /// <summary>True while every connection of the path's own is up (the library's are the broker's concern).</summary>
    bool OwnConnectionsUp { get; }

    /// <summary>How many times the path's own connections were made again after being lost.</summary>
    long Reconnects { get; }

    /// <summary>Runs the publish script for one publication.</summary>
    Task<PublishReply> PublishAsync(string channel, ReadOnlyMemory<byte> data, PublishOptions options);
}

/// <summary>What every publish path builds its <see cref="PublishCommand"/> from.</summary>
internal sealed record PublishCommands(RedisKeys Keys, RedisBrokerOptions Options, bool Sharded)
{
    /// <summary>The script's run for one publication; with <paramref name="announce"/> false it stores without publishing the envelope.</summary>
    public PublishCommand For(string channel, ReadOnlyMemory<byte> data, PublishOptions options, bool announce = true) =>
        new(Keys, channel, data, options, Options, Sharded, announce);
}
