using System.Globalization;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using PushService.Client;
using PushService.FunctionalTests.Infrastructure;
using PushService.Gateway.Configuration;
using PushService.Gateway.Publishing;

namespace PushService.FunctionalTests;

/// <summary>The .NET SDK against a real gateway: recovery after a slow-consumer close and after a server-side unsubscribe.</summary>
public sealed class SdkTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public Task InitializeAsync()
    {
        _host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:Limits:ClientQueueMaxMessages"] = "50",
            ["PushService:DefaultNamespace:HistorySize"] = "10000",
            ["PushService:Namespaces:chat:AllowClientPublish"] = "true",
        });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private PushClient NewClient()
    {
        var options = new PushClientOptions { MinReconnectDelay = TimeSpan.FromMilliseconds(20), MaxReconnectDelay = TimeSpan.FromMilliseconds(200) };
        options.Endpoints.Add(_host.WebSocketUri);
        return new PushClient(options);
    }

    [Fact]
    public async Task SlowConsumerClose_IsRecoveredWithoutLoss()
    {
        await using var client = NewClient();
        await client.ConnectAsync();
        var subscription = await client.SubscribeAsync("burst");

        // Far more than the 50-frame queue, as fast as the broker takes them: the server must close with 4500.
        var publisher = _host.Services.GetRequiredService<Publisher>();
        var ns = _host.Services.GetRequiredService<NamespaceResolver>().Resolve("burst")!;
        const int count = 3000;
        for (var i = 1; i <= count; i++)
        {
            await publisher.PublishAsync("burst", ns, Encoding.UTF8.GetBytes(i.ToString(CultureInfo.InvariantCulture)), null, fromApi: true, CancellationToken.None);
        }

        var received = new List<long>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (received.Count < count)
        {
            var e = await subscription.Events.ReadAsync(cts.Token);
            Assert.Equal(ChannelEventKind.Message, e.Kind);
            received.Add(e.Offset);
        }

        Assert.Equal(Enumerable.Range(1, count).Select(i => (long)i), received);
        Assert.True(client.Reconnects >= 1, "the burst never overflowed the queue");
        Assert.Equal(4500, client.LastClose?.Code);
        Assert.True(subscription.Recoveries >= 1);
    }

    [Fact]
    public async Task ClientPublish_AndHistory_Work()
    {
        await using var client = NewClient();
        await client.ConnectAsync();
        var subscription = await client.SubscribeAsync("chat:sdk");
        var (epoch, offset) = await client.PublishAsync("chat:sdk", new System.Text.Json.Nodes.JsonObject { ["text"] = "hi" });
        Assert.Equal(1, offset);
        var message = await subscription.Events.ReadAsync();
        Assert.Equal("hi", message.Data.GetProperty("text").GetString());
        Assert.Equal(epoch, message.Epoch);
        var history = await client.HistoryAsync("chat:sdk");
        Assert.Equal(1, history.GetProperty("messages").GetArrayLength());
        var denied = await Assert.ThrowsAsync<PushCommandException>(() => client.PublishAsync("news", 1));
        Assert.Equal("permission_denied", denied.Code);
    }

    [Fact]
    public async Task ServerDisconnectWithoutReconnect_StopsTheClient()
    {
        await using var client = NewClient();
        await client.ConnectAsync();
        var subscription = await client.SubscribeAsync("stop");
        await _host.Services.GetRequiredService<PushService.Gateway.Cluster.ClusterService>().DisconnectUserAsync("", reconnect: false, CancellationToken.None);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await foreach (var _ in subscription.Events.ReadAllAsync(cts.Token))
        {
        }

        Assert.True(client.IsStopped);
        Assert.Equal(1000, client.LastClose?.Code);
    }
}
