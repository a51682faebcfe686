using PushService.Gateway.Protocol;

namespace PushService.UnitTests;

public sealed class ChannelNameTests
{
    [Theory]
    [InlineData("news")]
    [InlineData("chat:room-1")]
    [InlineData("a.b@c/d=e#42,77")]
    [InlineData("_")]
    public void Valid(string name) => Assert.True(ChannelName.IsValid(name));

    [Theory]
    [InlineData("")]
    [InlineData(null)]
    [InlineData("has space")]
    [InlineData("émoji")]
    [InlineData("quote\"")]
    [InlineData("new\nline")]
    [InlineData("percent%2F")]
    [InlineData("comma,before#hash")]
    public void Invalid(string? name) => Assert.False(ChannelName.IsValid(name));

    [Fact]
    public void LengthLimit_Is255()
    {
        Assert.True(ChannelName.IsValid(new string('a', 255)));
        Assert.False(ChannelName.IsValid(new string('a', 256)));
    }

    [Theory]
    [InlineData("notifications#42", "42", true)]
    [InlineData("notifications#42", "4", false)]
    [InlineData("notifications#42", "", false)]
    [InlineData("dm#42,77", "77", true)]
    [InlineData("dm#42,77", "42,77", false)]
    [InlineData("open", "", true)]
    [InlineData("open", "9", true)]
    public void UserLimitedChannels(string channel, string user, bool allowed) => Assert.Equal(allowed, ChannelName.AllowsUser(channel, user));
}
