using PushService.Client;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>A redis-server and several gateway processes pointed at it.</summary>
public sealed class TestCluster : IAsyncDisposable
{
    private readonly List<PushClient> _clients = [];

    private TestCluster(RedisServer redis, IReadOnlyList<GatewayProcess> nodes)
    {
        Redis = redis;
        Nodes = nodes;
    }

    public RedisServer Redis { get; }

    public IReadOnlyList<GatewayProcess> Nodes { get; }

    public static async Task<TestCluster> StartAsync(int nodes, IDictionary<string, string>? settings = null)
    {
        var redis = await RedisServer.StartAsync();
        var started = await Task.WhenAll(Enumerable.Range(1, nodes).Select(i => GatewayProcess.StartAsync($"node-{i}", redis.Configuration, settings)));
        return new TestCluster(redis, started);
    }

    /// <summary>An SDK client that starts on node <paramref name="first"/> and fails over to the others in turn.</summary>
    public async Task<PushClient> ClientAsync(int first, Func<CancellationToken, ValueTask<string?>>? token = null)
    {
        var options = new PushClientOptions { TokenProvider = token, MinReconnectDelay = TimeSpan.FromMilliseconds(50), MaxReconnectDelay = TimeSpan.FromSeconds(1) };
        for (var i = 0; i < Nodes.Count; i++)
        {
            options.Endpoints.Add(Nodes[(first + i) % Nodes.Count].WebSocketUri);
        }

        var client = new PushClient(options);
        _clients.Add(client);
        await client.ConnectAsync();
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            await client.DisposeAsync();
        }

        foreach (var node in Nodes)
        {
            await node.DisposeAsync();
        }

        await Redis.DisposeAsync();
    }
}
