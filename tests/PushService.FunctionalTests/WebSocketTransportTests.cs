using System.Buffers.Binary;
using System.Text;
using PushService.FunctionalTests.Infrastructure;

namespace PushService.FunctionalTests;

/// <summary>
/// The WebSocket layer itself (RFC 6455), on both accept paths: upgrades taken straight off Kestrel's connection (the
/// default), and upgrades through the HTTP pipeline's <c>/ws</c> endpoint (<c>PushService:Server:BypassHttpPipeline=false</c>,
/// also what serves connections the direct path cannot see); and on both transports under them, the gateway's lean one
/// (the default) and Kestrel's own (<c>PushService:Server:BypassKestrelTransport=false</c>); and with the send loops' sends batched
/// into one io_uring submission a round (the default) or made socket by socket (<c>PushService:WebSocket:BatchSends=false</c>,
/// also what runs where io_uring is not available). All must behave the same to a client.
/// </summary>
public abstract class WebSocketTransportTests : IAsyncLifetime
{
    private readonly bool _direct;
    private readonly bool _lean;
    private readonly bool _batch;

    protected WebSocketTransportTests(bool direct, bool lean = true, bool batch = true)
    {
        _direct = direct;
        _lean = lean;
        _batch = batch;
    }

    protected GatewayHost Host { get; private set; } = null!;

    public Task InitializeAsync()
    {
        Host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:Server:BypassHttpPipeline"] = _direct ? "true" : "false",
            ["PushService:Server:BypassKestrelTransport"] = _lean ? "true" : "false",
            ["PushService:WebSocket:BatchSends"] = _batch ? "true" : "false",
            ["PushService:Limits:MaxMessageBytes"] = "4096",
            ["PushService:Namespaces:chat:AllowClientPublish"] = "true",
        });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await Host.DisposeAsync();

    private Task<RawWebSocket> OpenAsync(string? extraHeaders = null, byte[]? sameWrite = null) =>
        RawWebSocket.OpenAsync(Host.BaseAddress, RawWebSocket.NewKey(), extraHeaders, sameWrite);

    [Fact]
    public async Task Handshake_Answers101_WithTheAcceptKey_AndTheSubprotocolWhenAsked()
    {
        var key = RawWebSocket.NewKey();
        await using var socket = await RawWebSocket.OpenAsync(Host.BaseAddress, key, "Sec-WebSocket-Protocol: other, push.v1.json\r\n");
        Assert.StartsWith("HTTP/1.1 101", socket.ResponseHead[0], StringComparison.Ordinal);
        Assert.Equal(RawWebSocket.ExpectedAccept(key), socket.Header("Sec-WebSocket-Accept"));
        Assert.Equal("push.v1.json", socket.Header("Sec-WebSocket-Protocol"));
        Assert.Equal("websocket", socket.Header("Upgrade"), StringComparer.OrdinalIgnoreCase);

        // Which path answered: Kestrel's HTTP layer adds its Server header, the direct path writes only the handshake.
        Assert.Equal(_direct, socket.Header("Server") is null);

        await using var plain = await OpenAsync();
        Assert.Null(plain.Header("Sec-WebSocket-Protocol"));
    }

    [Fact]
    public async Task FramesSentWithTheUpgradeRequest_AreRead()
    {
        await using var socket = await OpenAsync(sameWrite: [.. RawWebSocket.Text("{\"op\":\"connect\",\"id\":1}"), .. RawWebSocket.Text("{\"op\":\"ping\",\"id\":2}")]);
        Assert.Contains("\"id\":1", await socket.ReceiveTextContainingAsync("\"id\":1"), StringComparison.Ordinal);
        Assert.Contains("\"id\":2", await socket.ReceiveTextContainingAsync("\"id\":2"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task FragmentedMessage_WithAPingBetweenFragments_IsReassembled_AndThePingAnswered()
    {
        await using var socket = await OpenAsync();
        await socket.SendAsync(
            RawWebSocket.Text("{\"op\":\"con", fin: false),
            RawWebSocket.Frame(0x9, "are you there"u8),
            RawWebSocket.Frame(0x0, "nect\",\"id\":"u8, fin: false),
            RawWebSocket.Frame(0x0, "7}"u8));

        var pong = await socket.ReceiveAsync();
        Assert.Equal(0xA, pong!.Value.Opcode);
        Assert.Equal("are you there", Encoding.UTF8.GetString(pong.Value.Payload));
        var reply = await socket.ReceiveTextContainingAsync("\"id\":7");
        Assert.Contains("\"result\"", reply, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LargeMessage_InMediumLengthFrames_IsReadWhole()
    {
        await using var subscriber = await Host.ConnectAsync();
        await subscriber.RequestAsync(new { op = "subscribe", channel = "chat:big" });
        await using var socket = await OpenAsync();
        await socket.SendAsync(RawWebSocket.Text("{\"op\":\"connect\",\"id\":1}"));
        await socket.ReceiveTextContainingAsync("\"id\":1");

        // 3,000 bytes of data split at odd places, each piece with its own mask.
        var command = $"{{\"op\":\"publish\",\"id\":2,\"channel\":\"chat:big\",\"data\":\"{new string('x', 3000)}\"}}";
        var bytes = Encoding.UTF8.GetBytes(command);
        await socket.SendAsync(
            RawWebSocket.Frame(0x1, bytes.AsSpan(0, 1001), fin: false),
            RawWebSocket.Frame(0x0, bytes.AsSpan(1001, 2), fin: false),
            RawWebSocket.Frame(0x0, bytes.AsSpan(1003)));
        var reply = await socket.ReceiveTextContainingAsync("\"id\":2");
        Assert.Contains("\"result\"", reply, StringComparison.Ordinal);
        var push = await subscriber.NextPushAsync();
        Assert.Equal(new string('x', 3000), push.GetProperty("data").GetString());
    }

    public static TheoryData<string, byte[]> ForbiddenFrames => new()
    {
        { "unmasked", RawWebSocket.Frame(0x1, "{}"u8, masked: false) },
        { "reserved bits", RawWebSocket.Frame(0x1, "{}"u8, rsv: 0b100) },
        { "unknown opcode", RawWebSocket.Frame(0x3, "{}"u8) },
        { "continuation without a message", RawWebSocket.Frame(0x0, "{}"u8) },
        { "fragmented ping", RawWebSocket.Frame(0x9, "x"u8, fin: false) },
        { "ping over 125 bytes", RawWebSocket.Frame(0x9, new byte[126]) },
        { "close with a one-byte payload", RawWebSocket.Frame(0x8, [3]) },
    };

    [Theory]
    [MemberData(nameof(ForbiddenFrames))]
    public async Task ForbiddenFrame_Closes1002_AndOnlyThatConnection(string what, byte[] frame)
    {
        await using var bystander = await Host.ConnectAsync();
        await using var socket = await OpenAsync();
        await socket.SendAsync(frame);
        Assert.True(1002 == await socket.ReceiveCloseCodeAsync(), what);
        Assert.Equal("{}", (await bystander.ResultAsync(new { op = "ping" })).GetRawText());
    }

    [Fact]
    public async Task AfterTheCloseHandshake_TheServerEndsTheTcpConnection()
    {
        // On the direct path over the lean transport the connection is no longer Kestrel's once answered: the gateway
        // closes the socket itself when the session ends, or it would stay open with nobody reading it.
        await using var socket = await OpenAsync();
        await socket.SendAsync(RawWebSocket.Frame(0x3, "{}"u8));
        Assert.Equal(1002, await socket.ReceiveCloseCodeAsync());
        await socket.SendAsync(RawWebSocket.Frame(0x8, [0x03, 0xEA]));
        Assert.Null(await socket.ReceiveAsync());
    }

    [Fact]
    public async Task NewMessageInsideAFragmentedOne_Closes1002()
    {
        await using var socket = await OpenAsync();
        await socket.SendAsync(RawWebSocket.Text("{\"op\":", fin: false), RawWebSocket.Text("{}"));
        Assert.Equal(1002, await socket.ReceiveCloseCodeAsync());
    }

    [Fact]
    public async Task InvalidUtf8_SplitAcrossFragments_Closes1007()
    {
        await using var socket = await OpenAsync();
        // A two-byte sequence cut in half is fine across frames; a lone continuation byte at the end is not.
        await socket.SendAsync(RawWebSocket.Frame(0x1, [(byte)'"', 0xC3], fin: false), RawWebSocket.Frame(0x0, [0xA9, (byte)'"', 0x80]));
        Assert.Equal(1007, await socket.ReceiveCloseCodeAsync());
    }

    [Fact]
    public async Task MessageOverTheLimit_AcrossManyFrames_Closes4009()
    {
        await using var socket = await OpenAsync();
        var piece = new byte[1000];
        piece.AsSpan().Fill((byte)'x');
        await socket.SendAsync(
            RawWebSocket.Frame(0x1, piece, fin: false), RawWebSocket.Frame(0x0, piece, fin: false), RawWebSocket.Frame(0x0, piece, fin: false),
            RawWebSocket.Frame(0x0, piece, fin: false), RawWebSocket.Frame(0x0, piece));
        Assert.Equal(4009, await socket.ReceiveCloseCodeAsync());
    }

    [Fact]
    public async Task ClientClose_IsAnsweredWithAClose_ThenTheConnectionEnds()
    {
        await using var socket = await OpenAsync();
        var payload = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(payload, 1000);
        await socket.SendAsync(RawWebSocket.Frame(0x8, payload));
        var close = await socket.ReceiveAsync();
        Assert.Equal(0x8, close!.Value.Opcode);
        Assert.Equal(1000, BinaryPrimitives.ReadUInt16BigEndian(close.Value.Payload));
        Assert.Null(await socket.ReceiveAsync());
    }

    [Fact]
    public async Task UpgradeWithoutAValidKey_Is400ProblemDetails()
    {
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(Host.BaseAddress.Host, Host.BaseAddress.Port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"GET /ws HTTP/1.1\r\nHost: {Host.BaseAddress.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n"));
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var read = await stream.ReadAtLeastAsync(buffer, 12, throwOnEndOfStream: false, timeout.Token);
        var response = Encoding.ASCII.GetString(buffer, 0, read);
        Assert.StartsWith("HTTP/1.1 400", response, StringComparison.Ordinal);
        Assert.Contains("application/problem+json", response, StringComparison.Ordinal);
    }

    /// <summary>Writes <paramref name="pieces"/> with pauses between them and returns everything the node answers until it closes or goes quiet.</summary>
    private async Task<string> SendInPiecesAsync(params string[] pieces)
    {
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(Host.BaseAddress.Host, Host.BaseAddress.Port);
        var stream = client.GetStream();
        foreach (var piece in pieces)
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes(piece));
            await stream.FlushAsync();
            await Task.Delay(50);
        }

        var buffer = new byte[8192];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        var read = 0;
        try
        {
            read = await stream.ReadAtLeastAsync(buffer, 12, throwOnEndOfStream: false, timeout.Token);
        }
        catch (OperationCanceledException)
        {
        }

        return Encoding.ASCII.GetString(buffer, 0, read);
    }

    [Fact]
    public async Task UpgradeHead_ArrivingInPieces_IsUpgraded()
    {
        var key = RawWebSocket.NewKey();
        var head = $"GET /ws HTTP/1.1\r\nHost: {Host.BaseAddress.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
        var response = await SendInPiecesAsync(head[..3], head[3..9], head[9..40], head[40..]);
        Assert.StartsWith("HTTP/1.1 101", response, StringComparison.Ordinal);
        Assert.Contains(RawWebSocket.ExpectedAccept(key), response, StringComparison.Ordinal);
        Assert.Equal(_direct, !response.Contains("Server:", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task OtherRequests_ArrivingInPieces_AreServedByTheHttpPipeline()
    {
        // The first pieces look like the WebSocket path until the request line says otherwise: the bytes the connection
        // middleware read must reach the HTTP parser untouched.
        var response = await SendInPiecesAsync("GET /w", "s/x HTTP/1.1\r\nHost: a\r\n", "\r\n");
        Assert.StartsWith("HTTP/1.1 404", response, StringComparison.Ordinal);

        var health = await SendInPiecesAsync("GET /", "healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200", health, StringComparison.Ordinal);
        Assert.EndsWith("ok", health, StringComparison.Ordinal);

        var notUpgrade = await SendInPiecesAsync("GET /ws HTTP/1.1\r\nHo", "st: a\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 400", notUpgrade, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GarbageOnTheConnection_GetsAnErrorOrAClose_AndTheNodeServesOthers()
    {
        var random = new Random(1234);
        for (var i = 0; i < 20; i++)
        {
            var garbage = new byte[random.Next(1, 3000)];
            random.NextBytes(garbage);
            if (i % 2 == 0)
            {
                // Half of them look like our path at first.
                "GET /ws "u8.CopyTo(garbage.AsSpan(0, Math.Min(8, garbage.Length)));
            }

            using var client = new System.Net.Sockets.TcpClient();
            await client.ConnectAsync(Host.BaseAddress.Host, Host.BaseAddress.Port);
            await client.GetStream().WriteAsync(garbage);
        }

        await using var client2 = await Host.ConnectAsync();
        Assert.Equal("{}", (await client2.ResultAsync(new { op = "ping" })).GetRawText());
        Assert.Equal("ok", await Host.Http.GetStringAsync("/healthz"));
    }

    [Fact]
    public async Task SubscribeAndPublish_DeliversThroughThisPath()
    {
        await using var client = await Host.ConnectAsync();
        await client.RequestAsync(new { op = "subscribe", channel = "news" });
        await Host.PublishAsync("news", "{\"n\":1}");
        var push = await client.NextPushAsync();
        Assert.Equal("message", push.GetProperty("type").GetString());
        Assert.Equal(1, push.GetProperty("data").GetProperty("n").GetInt32());
    }
}

/// <summary>Upgrades taken straight off Kestrel's connection, on the lean transport: the default.</summary>
public sealed class DirectWebSocketTransportTests() : WebSocketTransportTests(direct: true);

/// <summary>Upgrades through the HTTP pipeline's <c>/ws</c> endpoint.</summary>
public sealed class HttpWebSocketTransportTests() : WebSocketTransportTests(direct: false);

/// <summary>Upgrades taken straight off the connection, on Kestrel's own socket transport.</summary>
public sealed class KestrelSocketsWebSocketTransportTests() : WebSocketTransportTests(direct: true, lean: false);

/// <summary>Upgrades taken straight off the connection, on the lean transport, each socket sent to with a system call of its own.</summary>
public sealed class UnbatchedWebSocketTransportTests() : WebSocketTransportTests(direct: true, batch: false);
