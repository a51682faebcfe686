using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using PushService.Gateway.Api;
using PushService.Gateway.Configuration;

namespace PushService.UnitTests;

public sealed class ApiKeyAuthenticatorTests
{
    private static DefaultHttpContext Caller(string ip, string? bearer = null)
    {
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = IPAddress.Parse(ip);
        if (bearer is not null)
        {
            context.Request.Headers.Authorization = "Bearer " + bearer;
        }

        return context;
    }

    private static int? Status(IResult? result) => (result as IStatusCodeHttpResult)?.StatusCode;

    [Fact]
    public void ProtectedMode_AnswersLoopbackOnly()
    {
        var authenticator = new ApiKeyAuthenticator(Options.Create(new PushServiceOptions()), NullLogger<ApiKeyAuthenticator>.Instance);
        Assert.True(authenticator.ProtectedMode);
        Assert.Null(authenticator.Authorize(Caller("127.0.0.1"), "publish"));
        Assert.Null(authenticator.Authorize(Caller("::1"), "admin"));
        Assert.Equal(403, Status(authenticator.Authorize(Caller("10.1.2.3"), "publish")));
        Assert.Equal(403, Status(authenticator.Authorize(Caller("192.168.0.8", "anything"), "read")));
    }

    [Fact]
    public void WithKeys_LoopbackNeedsAKeyToo()
    {
        var options = new PushServiceOptions();
        options.Api.Keys.Add(new ApiKeyOptions { Key = "reader-key-0123456789", Scopes = ["read"] });
        var authenticator = new ApiKeyAuthenticator(Options.Create(options), NullLogger<ApiKeyAuthenticator>.Instance);
        Assert.Equal(401, Status(authenticator.Authorize(Caller("127.0.0.1"), "read")));
        Assert.Null(authenticator.Authorize(Caller("10.1.2.3", "reader-key-0123456789"), "read"));
        Assert.Equal(403, Status(authenticator.Authorize(Caller("10.1.2.3", "reader-key-0123456789"), "publish")));
    }
}
