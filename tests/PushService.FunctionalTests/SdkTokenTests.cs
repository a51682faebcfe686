using PushService.Client;
using PushService.FunctionalTests.Infrastructure;
using PushService.Testing;

namespace PushService.FunctionalTests;

/// <summary>The SDK with tokens: it refreshes before expiry, and takes in channels the server subscribed at connect.</summary>
public sealed class SdkTokenTests
{
    [Fact]
    public async Task ShortLivedTokens_AreRefreshedWithoutReconnecting_AndTokenChannelsDeliver()
    {
        await using var host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:Auth:Jwt:Secret"] = Tokens.Secret,
            ["PushService:Auth:Jwt:ClockSkew"] = "00:00:00",
        });
        var issued = 0;
        var options = new PushClientOptions
        {
            TokenProvider = _ =>
            {
                Interlocked.Increment(ref issued);
                return ValueTask.FromResult<string?>(Tokens.Connection("u7", TimeSpan.FromSeconds(3), channels: ["inbox#u7"]));
            },
        };
        options.Endpoints.Add(host.WebSocketUri);
        await using var client = new PushClient(options);
        await client.ConnectAsync();

        var inbox = client.GetSubscription("inbox#u7");
        Assert.NotNull(inbox);
        await host.PublishAsync("inbox#u7", "\"first\"");
        Assert.Equal("first", (await inbox.Events.ReadAsync()).Data.GetString());

        // Outlive three token lifetimes: the SDK must refresh each time, never being closed with 4001.
        await Task.Delay(TimeSpan.FromSeconds(7));
        await host.PublishAsync("inbox#u7", "\"later\"");
        var later = await inbox.Events.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("later", later.Data.GetString());
        Assert.Equal(2, later.Offset);
        Assert.Equal(0, client.Reconnects);
        Assert.True(issued >= 3, $"only {issued} tokens were asked for");
    }
}
