using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using PushService.FunctionalTests.Infrastructure;
using PushService.Testing;

namespace PushService.FunctionalTests;

/// <summary>
/// A hostile-input suite against one real node. Every case asserts its specified error or close code; meanwhile a
/// well-behaved client keeps receiving a steady stream, and at the end it must have every message, in order, and the
/// node must still be healthy.
/// </summary>
public sealed class HostileInputTests : IAsyncLifetime
{
    private GatewayHost _host = null!;
    private TestClient _steady = null!;
    private CancellationTokenSource _stop = null!;
    private Task<int> _publishing = null!;

    public async Task InitializeAsync()
    {
        _host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:Auth:Jwt:Secret"] = Tokens.Secret,
            ["PushService:Auth:Jwt:Audience"] = "push",
            ["PushService:Auth:AllowAnonymous"] = "true",
            ["PushService:DefaultNamespace:AllowAnonymousSubscribe"] = "true",
            ["PushService:Namespaces:private:RequireSubscriptionToken"] = "true",
            ["PushService:Limits:MaxMessageBytes"] = "4096",
            ["PushService:Limits:ConnectTimeout"] = "00:00:01",
            ["PushService:Limits:CommandsPerSecond"] = "20",
        });
        _steady = await _host.ConnectAsync();
        await _steady.ResultAsync(new { op = "subscribe", channel = "steady" });
        _stop = new CancellationTokenSource();
        _publishing = Task.Run(async () =>
        {
            var n = 0;
            while (!_stop.IsCancellationRequested)
            {
                await _host.PublishAsync("steady", (++n).ToString(CultureInfo.InvariantCulture));
                await Task.Delay(5);
            }

            return n;
        });
    }

    public async Task DisposeAsync()
    {
        await _steady.DisposeAsync();
        _stop.Dispose();
        await _host.DisposeAsync();
    }

    private async Task<TestClient> AnonymousAsync() => await _host.ConnectAsync();

    /// <summary>Stops the steady stream: the well-behaved client got every message, in order, and the node is healthy.</summary>
    private async Task AssertTheWellBehavedClientMissedNothingAsync()
    {
        await _stop.CancelAsync();
        var published = await _publishing;
        var messages = await _steady.MessagesAsync("steady", published);
        Assert.Equal(Enumerable.Range(1, published), messages.Select(m => m.GetProperty("data").GetInt32()));
        Assert.Equal("ok", await _host.Http.GetStringAsync("/healthz"));
        Assert.Equal("ready", await _host.Http.GetStringAsync("/readyz"));
    }

    private static async Task ExpectCloseAsync(TestClient client, int code)
    {
        var (closeCode, _) = await client.ClosedAsync();
        Assert.Equal(code, closeCode);
    }

    [Fact]
    public async Task EveryHostileCase_GetsItsCode_WhileAWellBehavedClientMissesNothing()
    {
        // Malformed, truncated, huge and deeply nested JSON; binary; unknown ops.
        foreach (var (frame, code) in new (string Frame, int Code)[]
        {
            ("{\"op\":\"subscribe\",\"id\":1,\"channel\":}", 4000),
            ("{\"op\":\"subscribe\",\"id\":1,\"chan", 4000),
            ("{\"op\":\"publish\",\"id\":1,\"channel\":\"x\",\"data\":" + new string('[', 2000) + new string(']', 2000) + "}", 4000),
            ("{\"op\":\"publish\",\"id\":1,\"channel\":\"x\",\"data\":\"" + new string('x', 5000) + "\"}", 4009),
            ("{\"op\":\"rm -rf\",\"id\":1}", 4000),
            ("{\"op\":\"ping\"}", 4000),
            ("", 4000),
        })
        {
            await using var client = await AnonymousAsync();
            await client.SendRawAsync(frame);
            await ExpectCloseAsync(client, code);
        }

        await using (var binary = await AnonymousAsync())
        {
            await binary.SendRawAsync([0x01, 0x02, 0xFF], WebSocketMessageType.Binary);
            await ExpectCloseAsync(binary, 4000);
        }

        await using (var invalidUtf8 = await AnonymousAsync())
        {
            await invalidUtf8.SendRawAsync([(byte)'{', 0xC3, 0x28, (byte)'}'], WebSocketMessageType.Text);
            var (code, _) = await invalidUtf8.ClosedAsync();
            Assert.NotEqual(1000, code);
        }

        // Wrong field types and invalid channel names: an error reply, and the connection stays.
        await using (var sloppy = await AnonymousAsync())
        {
            Assert.Equal("bad_request", await sloppy.ErrorCodeAsync(new { op = "subscribe", channel = new[] { "a" } }));
            Assert.Equal("bad_request", await sloppy.ErrorCodeAsync(new { op = "history", channel = "steady", limit = "all" }));
            Assert.Equal("bad_request", await sloppy.ErrorCodeAsync(new { op = "subscribe", channel = "news;DROP TABLE" }));
            Assert.Equal("bad_request", await sloppy.ErrorCodeAsync(new { op = "subscribe", channel = "" }));
            Assert.Equal("bad_request", await sloppy.ErrorCodeAsync(new { op = "subscribe", channel = "<script>" }));
            Assert.Equal("bad_request", await sloppy.ErrorCodeAsync(new { op = "subscribe", channel = new string('a', 300) }));
            Assert.Equal("{}", (await sloppy.ResultAsync(new { op = "ping" })).GetRawText());
        }

        // Connection tokens: unsigned, wrong key, wrong audience, expired.
        foreach (var token in new[]
        {
            Tokens.AlgNone("admin"),
            Tokens.Connection("42", secret: Tokens.OtherSecret, audience: "push"),
            Tokens.Connection("42", audience: "someone-else"),
            Tokens.Connection("42", lifetime: TimeSpan.FromMinutes(-10), audience: "push"),
            "eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
        })
        {
            await using var client = await _host.ConnectAsync(connect: false);
            Assert.Equal("unauthorized", await client.ErrorCodeAsync(new { op = "connect", token }));
            await ExpectCloseAsync(client, 4001);
        }

        // Subscription tokens for another channel or another user; none at all.
        await using (var user = await _host.ConnectAsync(connect: false))
        {
            await user.ResultAsync(new { op = "connect", token = Tokens.Connection("42", audience: "push") });
            Assert.Equal("unauthorized", await user.ErrorCodeAsync(new { op = "subscribe", channel = "private:a" }));
            Assert.Equal("unauthorized", await user.ErrorCodeAsync(new { op = "subscribe", channel = "private:a", token = Tokens.Subscription("42", "private:b", audience: "push") }));
            Assert.Equal("unauthorized", await user.ErrorCodeAsync(new { op = "subscribe", channel = "private:a", token = Tokens.Subscription("7", "private:a", audience: "push") }));
            Assert.Equal("permission_denied", await user.ErrorCodeAsync(new { op = "subscribe", channel = "inbox#7" }));
            await user.ResultAsync(new { op = "subscribe", channel = "private:a", token = Tokens.Subscription("42", "private:a", audience: "push") });
        }

        // An idempotency key replayed with another body.
        await _host.PublishAsync("orders", "{\"total\":10}", "order-1");
        using (var replay = await _host.PostPublishAsync("orders", "{\"total\":1000}", "order-1"))
        {
            Assert.Equal(HttpStatusCode.Conflict, replay.StatusCode);
        }

        // Slowloris: never sends connect.
        await using (var silent = await _host.ConnectAsync(connect: false))
        {
            await ExpectCloseAsync(silent, 4001);
        }

        // Command flood.
        await using (var flood = await AnonymousAsync())
        {
            for (var i = 0; i < 200 && flood.State == WebSocketState.Open; i++)
            {
                try
                {
                    await flood.SendRawAsync($"{{\"op\":\"ping\",\"id\":{i + 100}}}");
                }
                catch (WebSocketException)
                {
                    break;
                }
            }

            await ExpectCloseAsync(flood, 4029);
        }

        await AssertTheWellBehavedClientMissedNothingAsync();
    }
    /// <summary>
    /// Fuzzed frames from many connections at once, against the real node: mutated valid frames and random headers.
    /// Each connection must end with a close code of the contract (or RFC 6455's 1002 and 1007), none may take the node
    /// down, and the well-behaved client must still get every message in order.
    /// </summary>
    [Fact]
    public async Task FuzzedFrames_FromManyConnections_EachGetACloseCode_WhileAWellBehavedClientMissesNothing()
    {
        int[] allowed = [1000, 1002, 1007, 4000, 4001, 4009, 4029];
        var random = new Random(20261202);
        var streams = Enumerable.Range(0, 400).Select(i => FuzzedStream(random, i)).ToList();
        var codes = new System.Collections.Concurrent.ConcurrentBag<int>();
        foreach (var batch in streams.Chunk(25))
        {
            await Task.WhenAll(batch.Select(async stream =>
            {
                await using var socket = await RawWebSocket.OpenAsync(_host.BaseAddress, RawWebSocket.NewKey());
                Assert.StartsWith("HTTP/1.1 101", socket.ResponseHead[0], StringComparison.Ordinal);
                try
                {
                    await socket.SendAsync(stream);
                }
                catch (IOException)
                {
                    // The node may close before the whole stream is written; its close frame is still to be read.
                }

                codes.Add(await socket.ReceiveCloseCodeAsync());
            }));
        }

        Assert.Equal(streams.Count, codes.Count);
        Assert.All(codes, code => Assert.Contains(code, allowed));

        // Both kinds of refusal were reached: the frame reader's and the command decoder's.
        Assert.Contains(1002, codes);
        Assert.Contains(4000, codes);

        await AssertTheWellBehavedClientMissedNothingAsync();
    }

    /// <summary>
    /// One frame with bits flipped in its header, mask or payload (a connect, a subscribe, a ping), or random frame
    /// headers; then a well-formed unknown command. However the fuzzed part reads, the connection ends: a protocol
    /// error, a bad first command, the unknown command, or (when the reader waits inside a frame that never ends) the
    /// connect timeout.
    /// </summary>
    private static byte[] FuzzedStream(Random random, int i)
    {
        List<byte> bytes = [];
        if (i % 2 == 0)
        {
            byte[][] seeds =
            [
                RawWebSocket.Text("{\"op\":\"connect\",\"id\":1}"),
                RawWebSocket.Text("{\"op\":\"subscribe\",\"id\":2,\"channel\":\"fuzz\"}"),
                RawWebSocket.Frame(0x9, [1, 2]),
            ];
            var frame = (byte[])seeds[random.Next(seeds.Length)].Clone();
            for (var flips = random.Next(1, 4); flips > 0; flips--)
            {
                frame[random.Next(frame.Length)] ^= (byte)(1 << random.Next(8));
            }

            bytes.AddRange(frame);
        }
        else
        {
            for (var f = random.Next(1, 4); f > 0; f--)
            {
                var header = new byte[2 + random.Next(0, 40)];
                random.NextBytes(header);
                bytes.AddRange(header);
            }
        }

        bytes.AddRange(RawWebSocket.Text("{\"op\":\"fuzzed\",\"id\":9}"));
        return [.. bytes];
    }
}
