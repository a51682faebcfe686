using Microsoft.Extensions.Configuration;
using PushService.Broker.Redis;
using PushService.Gateway.Configuration;

namespace PushService.UnitTests;

/// <summary>
/// The performance switches are named after what they bypass; the names they had before (<c>LeanTransport</c>,
/// <c>DirectWebSockets</c>, <c>DirectSubscriptions</c>, <c>DirectPublish</c>) are still read, so an operator's existing
/// settings keep their meaning, and the new name wins where both are set.
/// </summary>
public sealed class RenamedSwitchTests
{
    public static TheoryData<string[], bool[]> Settings => new()
    {
        // Nothing set: every switch on.
        { [], [true, true, true, true] },

        // The former names alone still turn them off.
        { ["Server:LeanTransport=false", "Server:DirectWebSockets=false", "Redis:DirectSubscriptions=false", "Redis:DirectPublish=false"], [false, false, false, false] },

        // Both set: the new name wins.
        {
            [
                "Server:LeanTransport=false", "Server:BypassKestrelTransport=true", "Server:DirectWebSockets=true", "Server:BypassHttpPipeline=false",
                "Redis:DirectSubscriptions=false", "Redis:BypassLibrarySubscriptions=true", "Redis:DirectPublish=true", "Redis:BypassLibraryPublish=false",
            ],
            [true, false, true, false]
        },
    };

    /// <param name="settings">Keys under <c>PushService</c>, with their values.</param>
    /// <param name="expected">BypassKestrelTransport, BypassHttpPipeline, BypassLibrarySubscriptions, BypassLibraryPublish.</param>
    [Theory]
    [MemberData(nameof(Settings))]
    public void TheSwitches_ReadTheirNewNames_AndTheirFormerOnes(string[] settings, bool[] expected)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings.Select(setting => setting.Split('='))
            .Select(pair => new KeyValuePair<string, string?>("PushService:" + pair[0], pair[1]))).Build();
        var server = PushServiceOptions.From(configuration).Server;
        var redis = configuration.GetSection("PushService:Redis").Get<RedisBrokerOptions>() ?? new RedisBrokerOptions();
        bool[] actual = [server.BypassesKestrelTransport, server.BypassesHttpPipeline, redis.BypassesLibraryForSubscriptions, redis.BypassesLibraryForPublish];
        Assert.Equal(expected, actual);
    }
}
