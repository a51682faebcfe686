namespace PushService.Broker.Redis.Commands;

/// <summary>Publishes through StackExchange.Redis's shared multiplexer: TLS, Sentinel and Cluster included.</summary>
internal sealed class LibraryPublishPath(RedisConnection connection, PublishCommands commands) : IPublishPath
{
    public bool CanPublish => connection.IsConnected;

    public bool IsReady => true;

    public bool OwnConnectionsUp => true;

    public long Reconnects => 0;

    public Task<PublishReply> PublishAsync(string channel, ReadOnlyMemory<byte> data, PublishOptions options) =>
        PublishAsync(commands.For(channel, data, options));

    /// <summary>Runs <paramref name="command"/> by the library (which loads the script by SHA itself).</summary>
    public async Task<PublishReply> PublishAsync(PublishCommand command)
    {
        var multiplexer = await connection.GetAsync();
        return PublishCommand.Read(await multiplexer.GetDatabase().ScriptEvaluateAsync(RedisScripts.Publish, command.Keys, command.Arguments));
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
