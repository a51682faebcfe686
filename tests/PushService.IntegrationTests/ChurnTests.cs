using System.Text.Json;
using PushService.Client;
using PushService.IntegrationTests.Infrastructure;
using PushService.Testing;

namespace PushService.IntegrationTests;

/// <summary>Subscriptions coming and going on one channel, concurrently, on a Redis-backed node.</summary>
public sealed class ChurnTests
{
    [Fact]
    public async Task ConcurrentSubscribeAndUnsubscribe_OnOneChannel_NeverFails_AndDeliveryResumes()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        var node = cluster.Nodes[0];
        var clients = new List<TestClient>();
        for (var i = 0; i < 8; i++)
        {
            var client = await TestClient.OpenAsync(node.WebSocketUri);
            await client.ResultAsync(new { op = "connect" });
            clients.Add(client);
        }

        // Every client flips its subscription as fast as it can: the node's broker subscription for the channel is taken
        // and released over and over, from several connections at once.
        var errors = new List<string>();
        await Task.WhenAll(clients.Select(async client =>
        {
            for (var round = 0; round < 40; round++)
            {
                foreach (var op in new[] { "subscribe", "unsubscribe" })
                {
                    var reply = await client.RequestAsync(new { op, channel = "flipping" });
                    if (reply.TryGetProperty("error", out var error))
                    {
                        lock (errors)
                        {
                            errors.Add(error.ToString());
                        }
                    }
                }
            }
        }));

        Assert.Empty(errors);
        await clients[0].ResultAsync(new { op = "subscribe", channel = "flipping" });
        var published = await PushPublisher.Create(node.BaseAddress).PublishAsync("flipping", "\"after the churn\"");
        var message = (await clients[0].MessagesAsync("flipping", 1))[0];
        Assert.Equal(published.Offset, message.GetProperty("offset").GetInt64());
        Assert.Equal(JsonValueKind.String, message.GetProperty("data").ValueKind);
        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }
    }
}
