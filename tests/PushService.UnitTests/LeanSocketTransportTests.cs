using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging.Abstractions;
using PushService.Gateway.Transport.Sockets;

namespace PushService.UnitTests;

/// <summary>
/// The lean transport on real loopback sockets: what Kestrel's HTTP layer and the gateway's WebSocket connections rely
/// on from a transport (ordered bytes both ways, backpressure, the pipe reader's examined and cancel semantics, the end of
/// the input, aborts), and that an idle connection holds no buffer. Run with the inputs' waits in a
/// <see cref="ReadinessPoller"/> (as on Linux) and through the runtime (as elsewhere).
/// </summary>
public abstract class LeanSocketTransportTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private IConnectionListener _listener = null!;
    private Socket _client = null!;
    private LeanSocketConnection _server = null!;

    private PipeReader Input => _server.Transport.Input;

    private PipeWriter Output => _server.Transport.Output;

    /// <summary>Where the server's input waits; null for the runtime's zero-byte receives.</summary>
    private protected abstract ReadinessPoller? Poller { get; }

    private protected LeanSocketConnection Server => _server;

    public async Task InitializeAsync()
    {
        var factory = new LeanSocketTransportFactory(NullLogger<LeanSocketListener>.Instance, Poller);
        _listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0));
        _client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accept = _listener.AcceptAsync();
        await _client.ConnectAsync(_listener.EndPoint);
        _server = (LeanSocketConnection)(await accept)!;
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _client.Dispose();
        await _listener.DisposeAsync();
    }

    [Fact]
    public async Task BytesBothWays_ArriveWholeAndInOrder()
    {
        const int Total = 1 << 20;
        var sent = LoopbackBytes.Pattern(Total);
        var echo = EchoAsync(Total);

        var random = new Random(7);
        var receive = LoopbackBytes.ReceiveExactlyAsync(_client, Total);
        for (var offset = 0; offset < Total;)
        {
            var size = Math.Min(random.Next(1, 20_000), Total - offset);
            await _client.SendAsync(sent.AsMemory(offset, size));
            offset += size;
        }

        await echo.WaitAsync(Patience);
        Assert.Equal(sent, await receive.WaitAsync(Patience));
        Assert.False(_server.HoldsBuffers);
    }

    [Fact]
    public async Task FlushToAPeerThatDoesNotRead_WaitsForTheKernel_AndEverythingArrivesOnceItReads()
    {
        // Enough to fill the kernel's buffers on both ends of a loopback connection many times over.
        const int Chunk = 64 * 1024;
        const int MaxTotal = 256 * Chunk;
        var payload = LoopbackBytes.Pattern(MaxTotal);
        ValueTask<FlushResult> flush = default;
        var written = 0;
        while (written < MaxTotal)
        {
            Output.Write(payload.AsSpan(written, Chunk));
            written += Chunk;
            flush = Output.FlushAsync();
            if (!flush.IsCompleted)
            {
                break;
            }
        }

        Assert.False(flush.IsCompleted, "the kernel took everything without the peer reading");
        Assert.True(_server.HoldsBuffers);

        var received = await LoopbackBytes.ReceiveExactlyAsync(_client, written).WaitAsync(Patience);
        var result = await flush.AsTask().WaitAsync(Patience);
        Assert.False(result.IsCompleted);
        Assert.Equal(payload.AsSpan(0, written).ToArray(), received);
        Assert.False(_server.HoldsBuffers);
    }

    [Fact]
    public async Task MessagesSentTogether_OnceConsumed_LeaveNoBufferHeld_AndLaterBytesAreRead()
    {
        await _client.SendAsync("first|second|"u8.ToArray());
        var text = await ReadTextAsync(expectedLength: 13);
        Assert.Equal("first|second|", text);
        Assert.False(_server.HoldsBuffers);

        // A read waits for data with nothing rented; the bytes sent later are read then.
        var pending = Input.ReadAsync();
        Assert.False(pending.IsCompleted);
        Assert.False(_server.HoldsBuffers);
        await _client.SendAsync("third"u8.ToArray());
        var result = await pending.AsTask().WaitAsync(Patience);
        Assert.Equal("third", System.Text.Encoding.ASCII.GetString(result.Buffer.ToArray()));
        Input.AdvanceTo(result.Buffer.End);
        Assert.False(_server.HoldsBuffers);
    }

    [Fact]
    public async Task AdvanceWithEverythingExamined_WaitsForMoreBytes_AndReturnsTheOldWithTheNew()
    {
        await _client.SendAsync("GET / HTT"u8.ToArray());
        var first = await Input.ReadAsync().AsTask().WaitAsync(Patience);
        Assert.Equal(9, first.Buffer.Length);
        Input.AdvanceTo(first.Buffer.Start, first.Buffer.End);

        var next = Input.ReadAsync();
        Assert.False(next.IsCompleted);
        await _client.SendAsync("P/1.1\r\n"u8.ToArray());
        var second = await next.AsTask().WaitAsync(Patience);
        Assert.Equal("GET / HTTP/1.1\r\n", System.Text.Encoding.ASCII.GetString(second.Buffer.ToArray()));

        // Examined only in part: the next read returns at once with what is there.
        Input.AdvanceTo(second.Buffer.GetPosition(4), second.Buffer.GetPosition(6));
        var third = Input.ReadAsync();
        Assert.True(third.IsCompleted);
        Assert.Equal("/ HTTP/1.1\r\n", System.Text.Encoding.ASCII.GetString((await third).Buffer.ToArray()));
    }

    [Fact]
    public async Task CancelPendingRead_EndsAPendingRead_AndBytesStillArrive()
    {
        var pending = Input.ReadAsync();
        Assert.False(pending.IsCompleted);
        Input.CancelPendingRead();
        var canceled = await pending.AsTask().WaitAsync(Patience);
        Assert.True(canceled.IsCanceled);
        Input.AdvanceTo(canceled.Buffer.End);

        // Asked for before a read: the next read returns canceled at once.
        Input.CancelPendingRead();
        var next = await Input.ReadAsync();
        Assert.True(next.IsCanceled);
        Input.AdvanceTo(next.Buffer.End);

        await _client.SendAsync("after"u8.ToArray());
        Assert.Equal("after", await ReadTextAsync(expectedLength: 5));
    }

    [Fact]
    public async Task ReadCancellationToken_EndsTheRead_AndTheConnectionReadsOn()
    {
        using var timeout = new CancellationTokenSource();
        var pending = Input.ReadAsync(timeout.Token);
        Assert.False(pending.IsCompleted);
        await timeout.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await pending);

        await _client.SendAsync("still here"u8.ToArray());
        Assert.Equal("still here", await ReadTextAsync(expectedLength: 10));
    }

    [Fact]
    public async Task PeerClosing_CompletesTheInput_AndFiresConnectionClosed_WithoutARead()
    {
        var closed = new TaskCompletionSource();
        _server.ConnectionClosed.Register(() => closed.TrySetResult());

        await _client.SendAsync("bye"u8.ToArray());
        Assert.Equal("bye", await ReadTextAsync(expectedLength: 3));

        // No read is pending: the end of the input is still noticed.
        _client.Shutdown(SocketShutdown.Send);
        await closed.Task.WaitAsync(Patience);

        var result = await Input.ReadAsync().AsTask().WaitAsync(Patience);
        Assert.True(result.IsCompleted);
        Assert.True(result.Buffer.IsEmpty);
    }

    [Fact]
    public async Task PeerReset_FailsThePendingRead_AsAConnectionReset()
    {
        var pending = Input.ReadAsync();
        _client.LingerState = new LingerOption(true, 0);
        _client.Close();
        var error = await Assert.ThrowsAnyAsync<Exception>(async () => await pending.AsTask().WaitAsync(Patience));
        Assert.IsType<ConnectionResetException>(error);
    }

    [Fact]
    public async Task Abort_EndsAPendingRead_FiresConnectionClosed_AndThePeerSeesTheEnd()
    {
        var closed = new TaskCompletionSource();
        _server.ConnectionClosed.Register(() => closed.TrySetResult());
        var pending = Input.ReadAsync();

        _server.Abort(new ConnectionAbortedException("test abort"));

        var error = await Assert.ThrowsAsync<ConnectionAbortedException>(async () => await pending.AsTask().WaitAsync(Patience));
        Assert.Equal("test abort", error.Message);
        await closed.Task.WaitAsync(Patience);
        Assert.Equal(0, await _client.ReceiveAsync(new byte[16]).WaitAsync(Patience));
    }

    [Fact]
    public async Task CompletingTheOutput_ThenDisposing_SendsWhatWasWrittenButNotFlushed_ThenCloses()
    {
        Output.Write("unflushed"u8);
        await Output.CompleteAsync();
        await _server.DisposeAsync();

        var received = await ReceiveToEndAsync(_client).WaitAsync(Patience);
        Assert.Equal("unflushed", System.Text.Encoding.ASCII.GetString(received));
    }

    [Fact]
    public void Features_AreTheTransportsOwn_PlusWhatOthersSet()
    {
        IFeatureCollection features = _server.Features;
        Assert.Same(_server.Socket, features.Get<IConnectionSocketFeature>()!.Socket);
        Assert.Same(_server.Transport, features.Get<IConnectionTransportFeature>()!.Transport);
        Assert.Equal(_client.LocalEndPoint, features.Get<IConnectionEndPointFeature>()!.RemoteEndPoint);
        Assert.Null(features.Get<ITlsConnectionFeature>());

        var tls = new TestTlsFeature();
        features.Set<ITlsConnectionFeature>(tls);
        Assert.Same(tls, features.Get<ITlsConnectionFeature>());

        // Setting one of the transport's own to null hides it.
        features.Set<IConnectionSocketFeature>(null);
        Assert.Null(features.Get<IConnectionSocketFeature>());
        Assert.DoesNotContain(features, feature => feature.Key == typeof(IConnectionSocketFeature));
        Assert.Contains(features, feature => feature.Key == typeof(ITlsConnectionFeature));
        Assert.Contains(features, feature => feature.Key == typeof(IConnectionIdFeature));
        Assert.Equal(13, _server.ConnectionId.Length);
    }

    [Fact]
    public async Task ADetachedConnection_OutlivesKestrelsDispose_DropsKestrelsFeatures_AndClosesWhenItsOwnerSays()
    {
        IFeatureCollection features = _server.Features;
        features.Set<ITlsConnectionFeature>(new TestTlsFeature());
        _server.Items["kestrel"] = new object();

        Assert.True(_server.Detach());
        Assert.False(_server.Detach());
        Assert.Null(features.Get<ITlsConnectionFeature>());
        Assert.Empty(_server.Items);
        Assert.Same(_server.Transport, features.Get<IConnectionTransportFeature>()!.Transport);

        // Kestrel disposes its connection when its middleware returns: a detached one goes on both ways.
        await _server.DisposeAsync();
        await _client.SendAsync("ping"u8.ToArray());
        Assert.Equal("ping", await ReadTextAsync(4));
        Output.Write("pong"u8);
        await Output.FlushAsync();
        Assert.Equal("pong"u8.ToArray(), await LoopbackBytes.ReceiveExactlyAsync(_client, 4).WaitAsync(Patience));

        // Its owner closes it: the peer gets what was sent, then the end.
        Output.Write("last"u8);
        await Output.FlushAsync();
        _server.CloseDetached();
        Assert.Equal("last", System.Text.Encoding.ASCII.GetString(await ReceiveToEndAsync(_client).WaitAsync(Patience)));
        Assert.False(_server.HoldsBuffers);
    }

    [Fact]
    public void AConnectionWhoseTransportIsWrapped_StaysKestrels()
    {
        // As Kestrel's TLS middleware does: the connection's transport is then a stream over this one.
        _server.Transport = new WrappedPipe(new Pipe().Reader, new Pipe().Writer);
        Assert.False(_server.Detach());
    }

    [Fact]
    public void TheFactory_TakesTcpEndpointsOnly_LeavingTheRestToKestrelsTransport()
    {
        var factory = new LeanSocketTransportFactory(NullLogger<LeanSocketListener>.Instance);
        Assert.True(factory.CanBind(new IPEndPoint(IPAddress.Loopback, 0)));
        Assert.True(factory.CanBind(new IPEndPoint(IPAddress.IPv6Any, 0)));
        Assert.False(factory.CanBind(new UnixDomainSocketEndPoint("/tmp/pushservice-test.sock")));
        Assert.False(factory.CanBind(new FileHandleEndPoint(3, FileHandleType.Auto)));
    }

    private async Task EchoAsync(int total)
    {
        var echoed = 0;
        while (echoed < total)
        {
            var result = await Input.ReadAsync();
            foreach (var segment in result.Buffer)
            {
                Output.Write(segment.Span);
            }

            echoed += (int)result.Buffer.Length;
            Input.AdvanceTo(result.Buffer.End);
            await Output.FlushAsync();
        }
    }

    private async Task<string> ReadTextAsync(int expectedLength)
    {
        while (true)
        {
            var result = await Input.ReadAsync().AsTask().WaitAsync(Patience);
            if (result.Buffer.Length >= expectedLength || result.IsCompleted)
            {
                var text = System.Text.Encoding.ASCII.GetString(result.Buffer.ToArray());
                Input.AdvanceTo(result.Buffer.End);
                return text;
            }

            Input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    private static async Task<byte[]> ReceiveToEndAsync(Socket socket)
    {
        var all = new ArrayBufferWriter<byte>();
        while (true)
        {
            var n = await socket.ReceiveAsync(all.GetMemory(4096));
            if (n == 0)
            {
                return all.WrittenSpan.ToArray();
            }

            all.Advance(n);
        }
    }

    private sealed record WrappedPipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;

    private sealed class TestTlsFeature : ITlsConnectionFeature
    {
        public System.Security.Cryptography.X509Certificates.X509Certificate2? ClientCertificate { get; set; }

        public Task<System.Security.Cryptography.X509Certificates.X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) =>
            Task.FromResult(ClientCertificate);
    }
}
