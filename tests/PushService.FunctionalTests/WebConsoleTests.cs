using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using PushService.FunctionalTests.Infrastructure;
using PushService.Testing;

namespace PushService.FunctionalTests;

/// <summary>
/// The web console as the gateway serves it (its files, their security policy and caching) and the admin endpoint that
/// feeds its rates and chart. The page itself runs in Chromium against two nodes in the integration tests (ConsoleTests).
/// </summary>
public sealed class WebConsoleTests
{
    private const string AdminKey = "admin-key-0123456789abcd";
    private const string ReadKey = "reader-key-0123456789abc";

    private static readonly Dictionary<string, string?> WithKeys = new()
    {
        ["PushService:Api:Keys:0:Key"] = AdminKey,
        ["PushService:Api:Keys:0:Scopes:0"] = "admin",
        ["PushService:Api:Keys:1:Key"] = ReadKey,
        ["PushService:Api:Keys:1:Scopes:0"] = "read",
    };

    private static string Built(params string[] path) =>
        File.ReadAllText(Path.Combine([Repository.Root, "src", "Gateway", "WebConsole", "web", .. path]));

    [Fact]
    public async Task Console_IsServedFromTheBuild_WithASecurityPolicy_AndRevalidatedByItsETag()
    {
        await using var host = GatewayHost.Start(WithKeys);
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = host.BaseAddress };

        // Without the slash the page's relative addresses would resolve one level up: sent to the one with it.
        using var bare = await http.GetAsync("/console");
        Assert.Equal(HttpStatusCode.Redirect, bare.StatusCode);
        Assert.Equal("/console/", bare.Headers.Location?.OriginalString);

        using var page = await http.GetAsync("/console/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Equal(Built("index.html"), await page.Content.ReadAsStringAsync());
        Assert.True(page.Headers.CacheControl?.NoCache);
        Assert.Equal("DENY", page.Headers.GetValues("X-Frame-Options").Single());
        Assert.Equal("no-referrer", page.Headers.GetValues("Referrer-Policy").Single());
        var policy = page.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("default-src 'none'", policy, StringComparison.Ordinal);
        Assert.Contains("script-src 'self';", policy, StringComparison.Ordinal);
        Assert.Contains($"connect-src 'self' ws://{host.BaseAddress.Authority} wss://{host.BaseAddress.Authority};", policy, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", policy, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe", policy, StringComparison.Ordinal);

        // The script is the committed build of web/src/console.ts (the test command checks it against a fresh build).
        using var script = await http.GetAsync("/console/console.js");
        Assert.Equal("text/javascript", script.Content.Headers.ContentType?.MediaType);
        Assert.Equal(Built("dist", "console.js"), await script.Content.ReadAsStringAsync());
        Assert.Equal(TimeSpan.FromMinutes(5), script.Headers.CacheControl?.MaxAge);
        Assert.Equal("nosniff", script.Headers.GetValues("X-Content-Type-Options").Single());

        using var style = await http.GetAsync("/console/console.css");
        Assert.Equal("text/css", style.Content.Headers.ContentType?.MediaType);
        Assert.Equal(Built("console.css"), await style.Content.ReadAsStringAsync());

        // The page needs no key to load: it is the API behind it that asks for one.
        using var again = new HttpRequestMessage(HttpMethod.Get, "/console/");
        again.Headers.IfNoneMatch.Add(page.Headers.ETag!);
        Assert.Equal(HttpStatusCode.NotModified, (await http.SendAsync(again)).StatusCode);
        using var stale = new HttpRequestMessage(HttpMethod.Get, "/console/console.js");
        stale.Headers.IfNoneMatch.Add(new EntityTagHeaderValue("\"another\""));
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(stale)).StatusCode);
    }

    [Fact]
    public async Task Console_WhenTurnedOff_IsNotServed()
    {
        await using var host = GatewayHost.Start(new Dictionary<string, string?> { ["PushService:Console:Enabled"] = "false" });
        Assert.Equal(HttpStatusCode.NotFound, (await host.Http.GetAsync("/console/")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await host.Http.GetAsync("/console/console.js")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await host.Http.GetAsync("/sdk/push.js")).StatusCode);
    }

    [Fact]
    public async Task AdminActivity_NeedsAnAdminKey()
    {
        await using var host = GatewayHost.Start(WithKeys);

        async Task<(HttpStatusCode Status, string? Type)> Get(string? key)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/admin/activity");
            if (key is not null)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            }

            using var response = await host.Http.SendAsync(request);
            return (response.StatusCode, response.Content.Headers.ContentType?.MediaType);
        }

        Assert.Equal((HttpStatusCode.Unauthorized, "application/problem+json"), await Get(null));
        Assert.Equal((HttpStatusCode.Unauthorized, "application/problem+json"), await Get("wrong-key-0123456789abcd"));
        Assert.Equal((HttpStatusCode.Forbidden, "application/problem+json"), await Get(ReadKey));
        Assert.Equal((HttpStatusCode.OK, "application/json"), await Get(AdminKey));
    }

    [Fact]
    public async Task AdminActivity_CountsPublicationsDeliveriesAndDisconnectsByCode()
    {
        await using var host = GatewayHost.Start();
        await using var subscriber = await host.ConnectAsync();
        await subscriber.ResultAsync(new { op = "subscribe", channel = "watched" });
        await using var second = await host.ConnectAsync();
        await second.ResultAsync(new { op = "subscribe", channel = "watched" });
        for (var i = 0; i < 6; i++)
        {
            await host.PublishAsync("watched", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        await subscriber.MessagesAsync("watched", 6);
        await second.MessagesAsync("watched", 6);

        // A client that sends what is not a command is closed with 4000: the console counts it by its code.
        await using var bad = await host.ConnectAsync(connect: false);
        await bad.SendRawAsync("not json");
        Assert.Equal(4000, (await bad.ClosedAsync()).Code);

        // The series ends at the last whole second, so what was just done shows within a second or two; a publication's
        // deliveries may fall in the second after its own, so the wait is for every series.
        JsonElement activity = default;
        var deadline = DateTime.UtcNow.AddSeconds(15);
        do
        {
            await Task.Delay(250);
            activity = JsonDocument.Parse(await host.Http.GetStringAsync("/api/v1/admin/activity")).RootElement;
        }
        while ((Sum(activity, "publications") < 6 || Sum(activity, "deliveries") < 12 || !activity.GetProperty("disconnects").TryGetProperty("4000", out _))
            && DateTime.UtcNow < deadline);

        Assert.Equal(300, activity.GetProperty("publications").GetArrayLength());
        Assert.Equal(300, activity.GetProperty("deliveries").GetArrayLength());
        Assert.Equal(6, Sum(activity, "publications"));
        Assert.Equal(12, Sum(activity, "deliveries"));
        Assert.Equal(1, activity.GetProperty("disconnects").GetProperty("4000").GetInt64());
        Assert.Equal(DateTimeOffset.UtcNow.ToUnixTimeSeconds(), activity.GetProperty("second").GetInt64(), 3.0);

        var node = Assert.Single(activity.GetProperty("nodes").EnumerateArray());
        Assert.Equal(1, node.GetProperty("disconnects").GetProperty("4000").GetInt64());
    }

    private static long Sum(JsonElement activity, string series) =>
        activity.GetProperty(series).EnumerateArray().Sum(e => e.GetInt64());
}
