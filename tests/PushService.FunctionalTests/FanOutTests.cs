using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using PushService.FunctionalTests.Infrastructure;
using PushService.Testing;
using PushService.Gateway.Configuration;
using PushService.Gateway.Publishing;

namespace PushService.FunctionalTests;

/// <summary>Fan-out under load: batching, a slow reader closed with 4500 beside a fast one, and 1,000 subscribers.</summary>
public sealed class FanOutTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public Task InitializeAsync()
    {
        _host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:Limits:ClientQueueMaxBytes"] = "262144",
            ["PushService:DefaultNamespace:HistorySize"] = "1000",
        });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    /// <summary>Publishes in-process, as fast as the broker takes them, so frames queue up faster than one send.</summary>
    private async Task BurstAsync(string channel, int count, Func<int, string> data)
    {
        var publisher = _host.Services.GetRequiredService<Publisher>();
        var ns = _host.Services.GetRequiredService<NamespaceResolver>().Resolve(channel)!;
        for (var i = 1; i <= count; i++)
        {
            await publisher.PublishAsync(channel, ns, System.Text.Encoding.UTF8.GetBytes(data(i)), null, fromApi: true, CancellationToken.None);
        }
    }

    [Fact]
    public async Task Burst_IsBatchedIntoFramesOfNewlineSeparatedPushes()
    {
        await using var client = await _host.ConnectAsync();
        await client.ResultAsync(new { op = "subscribe", channel = "burst" });
        await BurstAsync("burst", 2000, i => i.ToString(CultureInfo.InvariantCulture));

        var messages = await client.MessagesAsync("burst", 2000);
        Assert.Equal(Enumerable.Range(1, 2000), messages.Select(m => m.GetProperty("data").GetInt32()));
        Assert.True(client.MultiObjectFrames > 0, "no frame carried more than one push");
        Assert.True(client.FramesReceived < 2000, $"{client.FramesReceived} frames for 2000 pushes");
    }

    [Fact]
    public async Task SlowReader_IsClosedWith4500_WhileAFastReaderGetsEveryMessage()
    {
        await using var fast = await _host.ConnectAsync();
        await fast.ResultAsync(new { op = "subscribe", channel = "firehose" });
        await using var smallBuffer = await TestClient.OpenPausedAsync(_host.WebSocketUri, receiveBufferBytes: 4096);
        smallBuffer.StartReading();
        await smallBuffer.ResultAsync(new { op = "connect" });
        await smallBuffer.ResultAsync(new { op = "subscribe", channel = "firehose" });

        // The slow client now stops reading: its socket buffers fill, then its queue, then the server closes it.
        var paused = await TestClient.OpenPausedAsync(_host.WebSocketUri, receiveBufferBytes: 4096);
        await using (paused)
        {
            paused.StartReading();
            await paused.ResultAsync(new { op = "connect" });
            await paused.ResultAsync(new { op = "subscribe", channel = "firehose" });
            paused.StopReading();

            // Paced to what a reading client takes (8 x 16 KiB at a time), so only the paused one falls behind.
            var payload = new string('x', 16 * 1024);
            const int count = 800;
            const int chunk = 8;
            var messages = new List<System.Text.Json.JsonElement>();
            var smallBufferMessages = new List<System.Text.Json.JsonElement>();
            for (var sent = 0; sent < count; sent += chunk)
            {
                var first = sent;
                await BurstAsync("firehose", chunk, i => $"{{\"i\":{first + i},\"pad\":\"{payload}\"}}");
                messages.AddRange(await fast.MessagesAsync("firehose", chunk, TimeSpan.FromSeconds(60)));
                smallBufferMessages.AddRange(await smallBuffer.MessagesAsync("firehose", chunk, TimeSpan.FromSeconds(60)));
            }

            Assert.Equal(Enumerable.Range(1, count), messages.Select(m => m.GetProperty("data").GetProperty("i").GetInt32()));
            Assert.Equal(Enumerable.Range(1, count), smallBufferMessages.Select(m => m.GetProperty("data").GetProperty("i").GetInt32()));

            paused.ResumeReading();
            var (code, reason) = await paused.ClosedAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(4500, code);
            Assert.Equal("slow_consumer", reason);
            var received = paused.DrainPushes();
            Assert.True(received.Count(p => p.GetProperty("type").GetString() == "message") < count);
            var last = received[^1];
            Assert.Equal("disconnect", last.GetProperty("type").GetString());
            Assert.True(last.GetProperty("reconnect").GetBoolean());
        }

    }

    [Fact]
    public async Task ThousandSubscribers_AllReceiveABurstInOrder()
    {
        const int subscribers = 1000;
        const int publications = 50;
        var clients = new TestClient[subscribers];
        await Parallel.ForEachAsync(Enumerable.Range(0, subscribers), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, _) =>
        {
            clients[i] = await _host.ConnectAsync();
            await clients[i].ResultAsync(new { op = "subscribe", channel = "crowd" });
        });

        var channels = await _host.GetJsonAsync("/api/v1/channels");
        Assert.Contains(channels.GetProperty("channels").EnumerateArray(),
            c => c.GetProperty("channel").GetString() == "crowd" && c.GetProperty("subscribers").GetInt32() == subscribers);

        await BurstAsync("crowd", publications, i => $"{{\"n\":{i}}}");
        await Parallel.ForEachAsync(clients, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (client, _) =>
        {
            var messages = await client.MessagesAsync("crowd", publications, TimeSpan.FromSeconds(60));
            Assert.Equal(Enumerable.Range(1, publications).Select(i => (long)i), messages.Select(m => m.GetProperty("offset").GetInt64()));
            await client.DisposeAsync();
        });
    }
}
