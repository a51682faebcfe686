using PushService.Testing;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>Raw protocol clients connected and subscribed to one channel, for tests that count what reaches them.</summary>
internal static class Subscribers
{
    public static async Task<List<TestClient>> OpenAsync(Uri webSocket, string channel, int count)
    {
        var clients = new List<TestClient>();
        for (var i = 0; i < count; i++)
        {
            var client = await TestClient.OpenAsync(webSocket);
            await client.ResultAsync(new { op = "connect" });
            await client.ResultAsync(new { op = "subscribe", channel });
            clients.Add(client);
        }

        return clients;
    }
}
