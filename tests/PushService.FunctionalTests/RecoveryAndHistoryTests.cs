using System.Net;
using System.Text.Json;
using PushService.FunctionalTests.Infrastructure;

namespace PushService.FunctionalTests;

/// <summary>Recovery with <c>since</c>, the history command and REST history, and idempotent REST publishing.</summary>
public sealed class RecoveryAndHistoryTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public Task InitializeAsync()
    {
        _host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:DefaultNamespace:HistorySize"] = "5",
            ["PushService:Namespaces:nohist:HistorySize"] = "0",
        });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task Reconnect_WithSince_RecoversWhatWasMissed_ThenGoesLive()
    {
        string epoch;
        long lastSeen;
        await using (var first = await _host.ConnectAsync())
        {
            var subscribed = await first.ResultAsync(new { op = "subscribe", channel = "feed" });
            epoch = subscribed.GetProperty("epoch").GetString()!;
            await _host.PublishAsync("feed", "\"a\"");
            lastSeen = (await first.MessagesAsync("feed", 1))[0].GetProperty("offset").GetInt64();
        }

        await _host.PublishAsync("feed", "\"b\"");
        await _host.PublishAsync("feed", "\"c\"");

        await using var second = await _host.ConnectAsync();
        var recovered = await second.ResultAsync(new { op = "subscribe", channel = "feed", since = new { epoch, offset = lastSeen } });
        Assert.True(recovered.GetProperty("recovered").GetBoolean());
        Assert.Equal(3, recovered.GetProperty("offset").GetInt64());
        var messages = recovered.GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal([2L, 3L], messages.Select(m => m.GetProperty("offset").GetInt64()));
        Assert.Equal(["b", "c"], messages.Select(m => m.GetProperty("data").GetString()));

        await _host.PublishAsync("feed", "\"d\"");
        var live = (await second.MessagesAsync("feed", 1))[0];
        Assert.Equal(4, live.GetProperty("offset").GetInt64());
    }

    [Fact]
    public async Task Since_BeyondHistorySize_IsNotRecovered_ButReturnsWhatIsLeft()
    {
        await using var client = await _host.ConnectAsync();
        var position = await client.ResultAsync(new { op = "subscribe", channel = "long" });
        await client.ResultAsync(new { op = "unsubscribe", channel = "long" });
        for (var i = 1; i <= 8; i++)
        {
            await _host.PublishAsync("long", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var result = await client.ResultAsync(new { op = "subscribe", channel = "long", since = new { epoch = position.GetProperty("epoch").GetString(), offset = 0 } });
        Assert.False(result.GetProperty("recovered").GetBoolean());
        Assert.Equal([4L, 5, 6, 7, 8], result.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("offset").GetInt64()));
    }

    [Fact]
    public async Task Since_WithAnotherEpoch_IsNotRecovered()
    {
        await _host.PublishAsync("epochs", "1");
        await using var client = await _host.ConnectAsync();
        var result = await client.ResultAsync(new { op = "subscribe", channel = "epochs", since = new { epoch = "gone", offset = 1 } });
        Assert.False(result.GetProperty("recovered").GetBoolean());
        Assert.NotEqual("gone", result.GetProperty("epoch").GetString());
        Assert.Empty(result.GetProperty("messages").EnumerateArray());
    }

    [Fact]
    public async Task Subscribe_DuringSteadyPublishing_SeesNoGapAndNoDuplicate()
    {
        using var stop = new CancellationTokenSource();
        var publisher = Task.Run(async () =>
        {
            var n = 0;
            while (!stop.IsCancellationRequested)
            {
                await _host.PublishAsync("busy", (++n).ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            return n;
        });

        await Task.Delay(50);
        await using var client = await _host.ConnectAsync();
        var subscribed = await client.ResultAsync(new { op = "subscribe", channel = "busy" });
        var start = subscribed.GetProperty("offset").GetInt64();
        await Task.Delay(200);
        await stop.CancelAsync();
        var total = await publisher;

        var messages = await client.MessagesAsync("busy", (int)(total - start));
        Assert.Equal(Enumerable.Range((int)start + 1, total - (int)start).Select(i => (long)i), messages.Select(m => m.GetProperty("offset").GetInt64()));
        Assert.False(client.TryNextPush(out _));
    }

    [Fact]
    public async Task HistoryCommand_ReturnsPositionAndMessages()
    {
        for (var i = 1; i <= 4; i++)
        {
            await _host.PublishAsync("hist", $"{{\"n\":{i}}}");
        }

        await using var client = await _host.ConnectAsync();
        var all = await client.ResultAsync(new { op = "history", channel = "hist" });
        Assert.Equal(4, all.GetProperty("offset").GetInt64());
        Assert.Equal([1L, 2, 3, 4], all.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("offset").GetInt64()));

        var epoch = all.GetProperty("epoch").GetString();
        var page = await client.ResultAsync(new { op = "history", channel = "hist", since = new { epoch, offset = 1 }, limit = 2 });
        Assert.Equal([2L, 3], page.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("offset").GetInt64()));
        Assert.Equal(2, page.GetProperty("messages")[0].GetProperty("data").GetProperty("n").GetInt32());
    }

    [Fact]
    public async Task RestHistory_SupportsSinceEpochAndLimit()
    {
        for (var i = 1; i <= 4; i++)
        {
            await _host.PublishAsync("resthist", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var all = await _host.GetJsonAsync("/api/v1/channels/resthist/history");
        var epoch = all.GetProperty("epoch").GetString();
        var after = await _host.GetJsonAsync($"/api/v1/channels/resthist/history?since=2&epoch={epoch}");
        Assert.Equal([3L, 4], after.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("offset").GetInt64()));
        var newest = await _host.GetJsonAsync("/api/v1/channels/resthist/history?limit=1");
        Assert.Equal(4, newest.GetProperty("messages")[0].GetProperty("data").GetInt32());
        var otherEpoch = await _host.GetJsonAsync("/api/v1/channels/resthist/history?since=2&epoch=old");
        Assert.Empty(otherEpoch.GetProperty("messages").EnumerateArray());
    }

    [Fact]
    public async Task NamespaceWithoutHistory_StillCountsOffsets_ButRecoversNothing()
    {
        await _host.PublishAsync("nohist:x", "1");
        var second = await _host.PublishAsync("nohist:x", "2");
        Assert.Equal(2, second.GetProperty("offset").GetInt64());
        var history = await _host.GetJsonAsync("/api/v1/channels/nohist:x/history");
        Assert.Empty(history.GetProperty("messages").EnumerateArray());
    }

    [Fact]
    public async Task IdempotencyKey_ReturnsTheFirstAnswer_AndOtherDataIsAConflict()
    {
        await using var client = await _host.ConnectAsync();
        await client.ResultAsync(new { op = "subscribe", channel = "idem" });
        var first = await _host.PublishAsync("idem", "{\"v\":1}", "order-17");
        var again = await _host.PublishAsync("idem", "{\"v\":1}", "order-17");
        Assert.Equal(first.GetRawText(), again.GetRawText());

        using var conflict = await _host.PostPublishAsync("idem", "{\"v\":2}", "order-17");
        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);

        await _host.PublishAsync("idem", "\"marker\"");
        var messages = await client.MessagesAsync("idem", 2);
        Assert.Equal(["{\"v\":1}", "\"marker\""], messages.Select(m => m.GetProperty("data").GetRawText()));
    }

    [Fact]
    public async Task Broadcast_PublishesToEveryChannel()
    {
        await using var client = await _host.ConnectAsync();
        await client.ResultAsync(new { op = "subscribe", channel = "b1" });
        await client.ResultAsync(new { op = "subscribe", channel = "b2" });
        using var response = await _host.Http.PostAsync("/api/v1/broadcast",
            new StringContent("{\"channels\":[\"b1\",\"b2\"],\"data\":{\"all\":true}}", System.Text.Encoding.UTF8, "application/json"));
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["b1", "b2"], body.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("channel").GetString()));
        Assert.Single(await client.MessagesAsync("b1", 1));
        Assert.Single(await client.MessagesAsync("b2", 1));

        using var bad = await _host.Http.PostAsync("/api/v1/broadcast",
            new StringContent("{\"channels\":[\"ok\",\"bad name\"],\"data\":1}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var untouched = await _host.GetJsonAsync("/api/v1/channels/ok/history");
        Assert.Equal(0, untouched.GetProperty("offset").GetInt64());
    }
}
