using System.Diagnostics;
using System.Text.Json;
using PushService.IntegrationTests.Infrastructure;
using PushService.Testing;
using Xunit.Abstractions;

namespace PushService.IntegrationTests;

/// <summary>
/// pushctl, the command-line tool (src/Pushctl), run as a process against a real gateway process on a real Redis, with
/// API keys and a token secret configured as in production: every command does its job, and bad input, refused keys,
/// refused tokens and an unreachable gateway each get a one-line message on standard error and the documented exit code.
/// </summary>
public sealed class PushctlTests(PushctlTests.Gateway gateway, ITestOutputHelper output) : IClassFixture<PushctlTests.Gateway>
{
    private const string AdminKey = "pushctl-admin-key-0123456789";
    private const string ReadKey = "pushctl-read-key-01234567890";

    [Fact]
    public async Task Help_ListsEveryCommand()
    {
        var help = await RunAsync("--help");
        Assert.Equal(0, help.ExitCode);
        foreach (var command in new[] { "publish", "tail", "token", "info", "channels", "presence", "history", "bench" })
        {
            Assert.Contains($"  {command}", help.Stdout, StringComparison.Ordinal);
        }

        var tokenHelp = await RunAsync("token", "mint", "--help");
        Assert.Equal(0, tokenHelp.ExitCode);
        Assert.Contains("--ttl", tokenHelp.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Publish_History_AndTail_WithSinceRecovery()
    {
        var first = await RunAsync("--json", "publish", "feed:a", """{"n":1}""");
        Assert.Equal(0, first.ExitCode);
        var position = JsonDocument.Parse(first.Stdout).RootElement;
        Assert.Equal("feed:a", position.GetProperty("channel").GetString());
        var epoch = position.GetProperty("epoch").GetString()!;
        var offset = position.GetProperty("offset").GetInt64();
        for (var n = 2; n <= 4; n++)
        {
            var more = await RunAsync("publish", "feed:a", $$"""{"n":{{n}}}""");
            Assert.Equal(0, more.ExitCode);
            Assert.Equal($"published to feed:a at offset {offset + n - 1} (epoch {epoch})", more.Stdout.Trim());
        }

        // Data from standard input, and an idempotency key that makes a second publish a no-op.
        var piped = await RunAsync(["--json", "publish", "feed:a", "-", "--idempotency-key", "once"], stdin: """{"n":5}""");
        var again = await RunAsync(["--json", "publish", "feed:a", "-", "--idempotency-key", "once"], stdin: """{"n":5}""");
        Assert.Equal(piped.Stdout, again.Stdout);

        var history = await RunAsync("--json", "history", "feed:a", "--since", offset.ToString(System.Globalization.CultureInfo.InvariantCulture), "--limit", "10");
        Assert.Equal(0, history.ExitCode);
        var messages = JsonDocument.Parse(history.Stdout).RootElement.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("data").GetProperty("n").GetInt32()).ToList();
        Assert.Equal([2, 3, 4, 5], messages);
        var table = await RunAsync("history", "feed:a", "--limit", "2");
        Assert.Contains("""{"n":5}""", table.Stdout, StringComparison.Ordinal);
        Assert.Contains($"feed:a at epoch {epoch}", table.Stdout, StringComparison.Ordinal);

        // Since offset 3: offsets 4 and 5 come back from history, in order, as JSON lines.
        var recovered = await RunAsync("tail", "feed:a", "--since", $"{epoch}:{offset + 2}", "--count", "2", "--timeout", "20s", "--format", "json");
        Assert.Equal(0, recovered.ExitCode);
        var lines = recovered.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal([offset + 3, offset + 4], lines.Select(l => l.GetProperty("offset").GetInt64()));
        Assert.Equal([4, 5], lines.Select(l => l.GetProperty("data").GetProperty("n").GetInt32()));

        // Live: a tail started first receives what is published after it subscribed.
        var live = StartAsync("tail", "feed:b", "--count", "2", "--timeout", "30s");
        await WaitForSubscriberAsync("feed:b");
        await RunAsync("publish", "feed:b", "\"one\"");
        await RunAsync("publish", "feed:b", "\"two\"");
        var tailed = await live;
        Assert.Equal(0, tailed.ExitCode);
        Assert.Equal(["one", "two"], tailed.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("data").GetString()));
    }

    [Fact]
    public async Task InfoChannelsAndPresence_ShowTheCluster()
    {
        var listening = StartAsync("tail", "room:lobby", "--count", "1", "--timeout", "30s");
        await WaitForSubscriberAsync("room:lobby");

        var info = await RunAsync("--json", "info");
        Assert.Equal(0, info.ExitCode);
        var node = Assert.Single(JsonDocument.Parse(info.Stdout).RootElement.GetProperty("nodes").EnumerateArray());
        Assert.Equal(gateway.Node.NodeId, node.GetProperty("node").GetString());
        Assert.True(node.GetProperty("connections").GetInt32() >= 1);

        var channels = await RunAsync("--json", "channels");
        Assert.Contains(JsonDocument.Parse(channels.Stdout).RootElement.GetProperty("channels").EnumerateArray(),
            c => c.GetProperty("channel").GetString() == "room:lobby" && c.GetProperty("subscribers").GetInt32() == 1);
        var channelTable = await RunAsync("channels");
        Assert.Contains("room:lobby", channelTable.Stdout, StringComparison.Ordinal);

        var presence = await RunAsync("--json", "presence", "room:lobby");
        Assert.Single(JsonDocument.Parse(presence.Stdout).RootElement.GetProperty("clients").EnumerateArray());
        var infoTable = await RunAsync("info");
        Assert.Contains(gateway.Node.NodeId, infoTable.Stdout, StringComparison.Ordinal);

        await RunAsync("publish", "room:lobby", "\"bye\"");
        Assert.Equal(0, (await listening).ExitCode);
    }

    [Fact]
    public async Task Tokens_AreMintedForTheGateway_AndChecked()
    {
        var minted = await RunAsync("token", "mint", "--secret", Tokens.Secret, "--sub", "alice", "--ttl", "10m");
        Assert.Equal(0, minted.ExitCode);
        var token = minted.Stdout.Trim();

        var check = await RunAsync("--json", "token", "check", token, "--secret", Tokens.Secret);
        Assert.Equal(0, check.ExitCode);
        var claims = JsonDocument.Parse(check.Stdout).RootElement.GetProperty("claims");
        Assert.Equal("alice", claims.GetProperty("sub").GetString());
        Assert.InRange(claims.GetProperty("exp").GetInt64() - DateTimeOffset.UtcNow.ToUnixTimeSeconds(), 590, 600);

        // The gateway takes it: a tail with it receives; without a token it is refused (anonymous clients are, there).
        var tail = StartAsync("tail", "secure:a", "--token", token, "--count", "1", "--timeout", "30s");
        await WaitForSubscriberAsync("secure:a");
        await RunAsync("publish", "secure:a", "1");
        Assert.Equal(0, (await tail).ExitCode);
        var refused = await RunAsync("tail", "secure:a", "--token", "", "--count", "1", "--timeout", "10s");
        Assert.Equal(3, refused.ExitCode);
        Assert.Contains("4001", refused.Stderr, StringComparison.Ordinal);

        // A subscription token names its channel; a wrong secret, an expired token and garbage are refused with exit 3.
        var subscription = (await RunAsync("token", "mint", "--secret", Tokens.Secret, "--sub", "alice", "--channel", "secure:b")).Stdout.Trim();
        Assert.Equal(0, (await RunAsync("token", "check", subscription, "--secret", Tokens.Secret, "--channel", "secure:b")).ExitCode);
        Assert.Equal(3, (await RunAsync("token", "check", subscription, "--secret", Tokens.Secret, "--channel", "secure:c")).ExitCode);
        var wrong = await RunAsync("token", "check", token, "--secret", Tokens.Secret + "-other");
        Assert.Equal(3, wrong.ExitCode);
        Assert.Contains("signature", wrong.Stderr, StringComparison.Ordinal);
        var shortLived = (await RunAsync("token", "mint", "--secret", Tokens.Secret, "--ttl", "1s")).Stdout.Trim();
        await Task.Delay(TimeSpan.FromSeconds(2));
        var expired = await RunAsync("token", "check", shortLived, "--secret", Tokens.Secret);
        Assert.Equal(3, expired.ExitCode);
        Assert.Contains("expired", expired.Stderr, StringComparison.Ordinal);
        Assert.Equal(3, (await RunAsync("token", "check", "not-a-jwt", "--secret", Tokens.Secret)).ExitCode);
    }

    [Fact]
    public async Task Bench_MeasuresLatency_AndFindsNothingLost()
    {
        var bench = await RunAsync("--json", "bench", "--subscribers", "12", "--channels", "3", "--rate", "60", "--duration", "2s");
        Assert.True(bench.ExitCode == 0, bench.Stderr);
        var summary = JsonDocument.Parse(bench.Stdout).RootElement;
        Assert.InRange(summary.GetProperty("published").GetInt64(), 100, 130);
        Assert.Equal(summary.GetProperty("published").GetInt64() * 4, summary.GetProperty("expected").GetInt64());
        Assert.Equal(summary.GetProperty("expected").GetInt64(), summary.GetProperty("received").GetInt64());
        Assert.Equal(0, summary.GetProperty("lost").GetInt64());
        Assert.True(summary.GetProperty("p50Ms").GetDouble() > 0);
        Assert.True(summary.GetProperty("p99Ms").GetDouble() >= summary.GetProperty("p50Ms").GetDouble());
    }

    public static TheoryData<string[], int, string> BadInput => new()
    {
        { ["nosuch"], 2, "Unrecognized command" },
        { ["publish", "feed:a"], 2, "Required argument missing" },
        { ["publish", "bad channel", "1"], 2, "is not a channel name" },
        { ["publish", "feed:a", "{not json"], 2, "the data is not JSON" },
        { ["publish", "nowhere:a", "1"], 4, "404" },
        { ["history", "feed:a", "--limit", "0"], 2, "--limit must be 1 or more" },
        { ["presence", "feed:a"], 4, "Presence is not enabled" },
        { ["tail", "feed:a", "--since", "nocolon"], 2, "--since takes EPOCH:OFFSET" },
        { ["tail", "a", "b", "--since", "e:1"], 2, "exactly one channel" },
        { ["tail", "feed:quiet", "--token", "", "--count", "1", "--timeout", "2s"], 3, "4001" },
        { ["token", "mint"], 2, "--secret" },
        { ["token", "mint", "--secret", "short"], 2, "at least 32 characters" },
        { ["token", "mint", "--secret", Tokens.Secret, "--ttl", "soon"], 2, "is not a duration" },
        { ["bench", "--rate", "0"], 2, "--rate must be 1 to" },
        { ["--url", "ftp://x", "info"], 2, "is not an http:// or https:// address" },
    };

    [Theory]
    [MemberData(nameof(BadInput))]
    public async Task BadInput_GetsAClearMessage_AndTheDocumentedExitCode(string[] args, int exitCode, string message)
    {
        var result = await RunAsync(args);
        Assert.Equal(exitCode, result.ExitCode);
        Assert.Contains(message, result.Stderr, StringComparison.Ordinal);
        Assert.StartsWith("pushctl: ", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RefusedKeys_AndAnUnreachableGateway_GetTheirExitCodes()
    {
        var noKey = await RunAsync(["publish", "feed:a", "1"], apiKey: "");
        Assert.Equal(3, noKey.ExitCode);
        Assert.Contains("401", noKey.Stderr, StringComparison.Ordinal);

        var reader = await RunAsync(["publish", "feed:a", "1"], apiKey: ReadKey);
        Assert.Equal(3, reader.ExitCode);
        Assert.Contains("lacks the 'publish' scope", reader.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, (await RunAsync(["history", "feed:a"], apiKey: ReadKey)).ExitCode);

        var closed = $"http://127.0.0.1:{FreePort.Next()}";
        var unreachable = await RunAsync(["--url", closed, "info"]);
        Assert.Equal(5, unreachable.ExitCode);
        Assert.Contains("cannot reach the gateway", unreachable.Stderr, StringComparison.Ordinal);
        var publishUnreachable = await RunAsync(["--url", closed, "publish", "feed:a", "1", "--retries", "0"]);
        Assert.Equal(5, publishUnreachable.ExitCode);
        var timedOut = await RunAsync("tail", "feed:never", "--count", "1", "--timeout", "2s");
        Assert.Equal(1, timedOut.ExitCode);
        Assert.Contains("timed out after 0 of 1 messages", timedOut.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheTool_InstallsWithDotnetToolInstall_AndRuns()
    {
        // As a user would: pack the tool (from this build) and install it from that package into a folder of its own.
        var work = Directory.CreateTempSubdirectory("pushctl-tool-");
        try
        {
            var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
            var packages = Path.Combine(work.FullName, "packages");
            var tools = Path.Combine(work.FullName, "tools");
            var pack = await Command.RunAsync("dotnet", ["pack", Path.Combine(BuiltAssembly.RepositoryRoot, "src", "Pushctl"), "-c", configuration, "--no-build", "-o", packages, "-nologo"], timeout: TimeSpan.FromMinutes(3));
            Assert.True(pack.ExitCode == 0, pack.ToString());
            var install = await Command.RunAsync("dotnet", ["tool", "install", "--tool-path", tools, "--add-source", packages, "PushService.Pushctl"], timeout: TimeSpan.FromMinutes(3));
            Assert.True(install.ExitCode == 0, install.ToString());

            var info = new ProcessStartInfo(Path.Combine(tools, "pushctl")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in new[] { "--url", gateway.Node.BaseAddress.ToString(), "--api-key", AdminKey, "--json", "info" })
            {
                info.ArgumentList.Add(arg);
            }

            using var process = Process.Start(info)!;
            var stdout = await process.StandardOutput.ReadToEndAsync();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.True(process.ExitCode == 0, stdout + await process.StandardError.ReadToEndAsync());
            Assert.Equal(gateway.Node.NodeId, JsonDocument.Parse(stdout).RootElement.GetProperty("nodes")[0].GetProperty("node").GetString());
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    private Task<Result> RunAsync(params string[] args) => RunAsync(args, stdin: null);

    private Task<Result> StartAsync(params string[] args) => RunAsync(args, stdin: null);

    private async Task<Result> RunAsync(string[] args, string? stdin = null, string? apiKey = AdminKey)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(BuiltAssembly.Locate(Path.Combine("src", "Pushctl"), "pushctl"));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["PUSHCTL_URL"] = gateway.Node.BaseAddress.ToString();
        info.Environment["PUSHCTL_API_KEY"] = apiKey;
        info.Environment["NO_COLOR"] = "1";

        // Anonymous clients are refused by this gateway: every tail connects as a user unless a test says otherwise.
        info.Environment["PUSHCTL_TOKEN"] = Tokens.Connection("pushctl-tests", TimeSpan.FromHours(1));
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }

        process.StandardInput.Close();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(90));
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        var result = new Result(process.ExitCode, await stdout, await stderr);
        output.WriteLine($"pushctl {string.Join(' ', args)} -> {result.ExitCode}\n{result.Stdout}{result.Stderr}");
        return result;
    }

    /// <summary>Waits until the gateway counts a subscriber of <paramref name="channel"/> (a tail has subscribed).</summary>
    private async Task WaitForSubscriberAsync(string channel)
    {
        using var http = new HttpClient { BaseAddress = gateway.Node.BaseAddress };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminKey);
        await Poll.UntilAsync(async () =>
        {
            var channels = JsonDocument.Parse(await http.GetStringAsync("/api/v1/channels")).RootElement.GetProperty("channels");
            return channels.EnumerateArray().Any(c => c.GetProperty("channel").GetString() == channel);
        }, TimeSpan.FromSeconds(30), () => $"no subscriber of {channel} within 30 s");
    }

    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <summary>One gateway process on one Redis for the whole class: keys, a token secret and the namespaces the tests use.</summary>
    public sealed class Gateway : IAsyncLifetime
    {
        private RedisServer? _redis;

        public GatewayProcess Node { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            _redis = await RedisServer.StartAsync();
            Node = await GatewayProcess.StartAsync("pushctl-node", _redis.Configuration, new Dictionary<string, string>
            {
                ["PushService:Api:Keys:0:Key"] = AdminKey,
                ["PushService:Api:Keys:0:Scopes:0"] = "admin",
                ["PushService:Api:Keys:1:Key"] = ReadKey,
                ["PushService:Api:Keys:1:Scopes:0"] = "read",
                ["PushService:Auth:Jwt:Secret"] = Tokens.Secret,
                ["PushService:Namespaces:feed:HistorySize"] = "100",
                ["PushService:Namespaces:feed:AllowAnonymousSubscribe"] = "true",
                ["PushService:Namespaces:room:Presence"] = "true",
                ["PushService:Namespaces:room:AllowAnonymousSubscribe"] = "true",
                ["PushService:Namespaces:secure:HistorySize"] = "10",
                ["PushService:DefaultNamespace:AllowAnonymousSubscribe"] = "true",
            });
        }

        public async Task DisposeAsync()
        {
            await Node.DisposeAsync();
            if (_redis is not null)
            {
                await _redis.DisposeAsync();
            }
        }
    }
}
