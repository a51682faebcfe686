using StackExchange.Redis;

namespace PushService.Broker.Redis.Commands;

/// <summary>
/// Publishes on the broker's own RESP connection (<see cref="CommandConnection"/>, one plain Redis server), pipelined,
/// and through the library while that connection reconnects: the multiplexer may still be up.
/// </summary>
internal sealed class RespPublishPath(CommandConnection connection, LibraryPublishPath fallback, PublishCommands commands) : IPublishPath
{
    public bool CanPublish => connection.IsConnected || fallback.CanPublish;

    public bool IsReady => true;

    public bool OwnConnectionsUp => connection.IsConnected;

    public long Reconnects => Math.Max(0, connection.Connects - 1);

    /// <summary>How many commands went on the broker's own connection.</summary>
    public long Sent => connection.Sent;

    /// <summary>How many times the connection was made.</summary>
    public int Connects => connection.Connects;

    public Task<PublishReply> PublishAsync(string channel, ReadOnlyMemory<byte> data, PublishOptions options)
    {
        var command = commands.For(channel, data, options);
        return connection.IsConnected ? PublishAsync(command) : fallback.PublishAsync(command);
    }

    /// <summary>Runs the publish script by SHA, and with its text when Redis does not have it (after a restart or a
    /// <c>SCRIPT FLUSH</c>), which also stores it for the next.</summary>
    private async Task<PublishReply> PublishAsync(PublishCommand command)
    {
        try
        {
            return await connection.SendAsync(command, static (writer, c) => c.Write(writer, withScript: false), PublishCommand.Read);
        }
        catch (RedisServerException ex) when (ex.Message.StartsWith("NOSCRIPT", StringComparison.Ordinal))
        {
            return await connection.SendAsync(command, static (writer, c) => c.Write(writer, withScript: true), PublishCommand.Read);
        }
    }

    public ValueTask DisposeAsync() => connection.DisposeAsync();
}
