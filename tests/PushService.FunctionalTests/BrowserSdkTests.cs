using System.Net;
using System.Net.Http.Headers;
using PushService.FunctionalTests.Infrastructure;
using PushService.Testing;

namespace PushService.FunctionalTests;

/// <summary>The browser client as the gateway serves it: the built module itself, loadable from any origin, revalidated by ETag.</summary>
public sealed class BrowserSdkTests
{
    [Fact]
    public async Task SdkModule_IsServedFromTheBuild_ToAnyOrigin_AndRevalidatedByItsETag()
    {
        await using var host = GatewayHost.Start();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/sdk/push.js");
        request.Headers.Add("Origin", "https://app.example.com");
        using var response = await host.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/javascript", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("*", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Equal(TimeSpan.FromMinutes(5), response.Headers.CacheControl?.MaxAge);

        // Byte for byte the committed build of src/Sdk/js, which the test command checks against a fresh one.
        var built = await File.ReadAllBytesAsync(Path.Combine(Repository.Root, "src", "Sdk", "js", "dist", "push.js"));
        Assert.Equal(built, await response.Content.ReadAsByteArrayAsync());

        using var again = new HttpRequestMessage(HttpMethod.Get, "/sdk/push.js");
        again.Headers.IfNoneMatch.Add(response.Headers.ETag!);
        using var revalidated = await host.Http.SendAsync(again);
        Assert.Equal(HttpStatusCode.NotModified, revalidated.StatusCode);

        using var stale = new HttpRequestMessage(HttpMethod.Get, "/sdk/push.js");
        stale.Headers.IfNoneMatch.Add(new EntityTagHeaderValue("\"another\""));
        Assert.Equal(HttpStatusCode.OK, (await host.Http.SendAsync(stale)).StatusCode);
    }

}
