using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging.Abstractions;
using PushService.Gateway.Transport.Sockets;

namespace PushService.UnitTests;

/// <summary>
/// Batched sends (one io_uring submission for a round's flushes) on real loopback sockets of the lean transport: each
/// flush ends once, as the flush it replaces would have, with every byte delivered in order to its own socket, whatever
/// the kernel does with it (takes it whole, takes part and makes the rest wait, or refuses it because the socket is gone).
/// Needs io_uring: where the kernel refuses it (a container's seccomp profile) the README test command says so and
/// leaves these out (<c>Requires=io_uring</c>); what the node does there instead is <c>PerformanceSwitchTests</c>'s.
/// </summary>
[Trait("Requires", "io_uring")]
public sealed class SendBatchTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private readonly List<(Socket Client, LeanSocketConnection Server)> _pairs = [];
    private IConnectionListener _listener = null!;
    private SendBatch _batch = null!;

    public async Task InitializeAsync()
    {
        var factory = new LeanSocketTransportFactory(NullLogger<LeanSocketListener>.Instance);
        _listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0));
        // The test command runs this suite only where the kernel gives io_uring; elsewhere the gateway falls back to a
        // send per socket (UnbatchedWebSocketTransportTests), and this says why it could not run if run anyway.
        _batch = SendBatch.TryCreate(8, out var unavailable) ?? throw new InvalidOperationException($"No io_uring here: {unavailable}");
    }

    public async Task DisposeAsync()
    {
        foreach (var (client, server) in _pairs)
        {
            await server.DisposeAsync();
            client.Dispose();
        }

        _batch.Dispose();
        await _listener.DisposeAsync();
    }

    [Fact]
    public async Task ARoundOfFlushes_MoreThanOneSubmissionHolds_EachEndsOnce_AndEachSocketGetsItsOwnBytes()
    {
        // 20 connections through a batch of 8: the batch submits when full and again at the end of the round.
        var pairs = await ConnectAsync(20);
        var completions = new Completion[pairs.Count];
        for (var i = 0; i < pairs.Count; i++)
        {
            var output = pairs[i].Server.Transport.Output;
            output.Write(System.Text.Encoding.ASCII.GetBytes($"message for connection {i}"));
            completions[i] = new Completion();
            Assert.True(_batch.TryAdd(output, completions[i]));
        }

        _batch.Submit();

        Assert.Equal(0, _batch.Count);
        for (var i = 0; i < pairs.Count; i++)
        {
            var result = Assert.Single(completions[i].Results);
            Assert.False(result.IsCompleted);
            Assert.False(result.IsCanceled);
            var expected = $"message for connection {i}";
            var received = await LoopbackBytes.ReceiveExactlyAsync(pairs[i].Client, expected.Length).WaitAsync(Patience);
            Assert.Equal(expected, System.Text.Encoding.ASCII.GetString(received));
            Assert.False(pairs[i].Server.HoldsBuffers);
        }
    }

    [Fact]
    public async Task AnOutputOfSeveralBuffers_ArrivesWholeAndInOrder_AndItsBuffersGoBackBeforeTheSubmission()
    {
        var (client, server) = Assert.Single(await ConnectAsync(1));
        var output = server.Transport.Output;
        // Ten writes that each fill most of a 4 KB buffer: ten buffers.
        var payload = LoopbackBytes.Pattern(10 * 4000);
        for (var offset = 0; offset < payload.Length; offset += 4000)
        {
            output.Write(payload.AsSpan(offset, 4000));
        }

        var completion = new Completion();
        Assert.True(_batch.TryAdd(output, completion));
        Assert.False(server.HoldsBuffers);
        var receive = LoopbackBytes.ReceiveExactlyAsync(client, payload.Length);
        _batch.Submit();

        Assert.Equal(payload, await receive.WaitAsync(Patience));
        var result = Assert.Single(await completion.WaitAsync());
        Assert.False(result.IsCompleted);
        Assert.False(server.HoldsBuffers);
    }

    [Fact]
    public async Task MoreBytesThanTheBatchHolds_AreSubmittedAsItFills_AndEverySocketGetsItsOwn()
    {
        // Eight flushes of 60 KB: more than the batch's 256 KB, so it submits when the next would not fit.
        var pairs = await ConnectAsync(8);
        var payloads = new byte[pairs.Count][];
        var receives = new Task<byte[]>[pairs.Count];
        var completions = new Completion[pairs.Count];
        for (var i = 0; i < pairs.Count; i++)
        {
            payloads[i] = LoopbackBytes.Pattern(60_000 + i);
            receives[i] = LoopbackBytes.ReceiveExactlyAsync(pairs[i].Client, payloads[i].Length);
            pairs[i].Server.Transport.Output.Write(payloads[i]);
            completions[i] = new Completion();
            Assert.True(_batch.TryAdd(pairs[i].Server.Transport.Output, completions[i]));
        }

        Assert.True(_batch.Count < pairs.Count);
        _batch.Submit();

        for (var i = 0; i < pairs.Count; i++)
        {
            Assert.Equal(payloads[i], await receives[i].WaitAsync(Patience));
            Assert.False(Assert.Single(await completions[i].WaitAsync()).IsCompleted);
        }
    }

    [Fact]
    public async Task APeerThatDoesNotRead_MakesItsFlushWaitForTheKernel_WhileTheOthersEnd_AndItEndsOnceThePeerReads()
    {
        var pairs = await ConnectAsync(2);
        var (slowClient, slowServer) = pairs[0];
        var (client, server) = pairs[1];

        // Fill the slow peer's side until a batched flush cannot go out whole and has to wait.
        const int Chunk = 32 * 1024;
        var payload = LoopbackBytes.Pattern(512 * Chunk);
        var written = 0;
        while (written < payload.Length)
        {
            slowServer.Transport.Output.Write(payload.AsSpan(written, Chunk));
            written += Chunk;
            var completion = new Completion();
            Assert.True(_batch.TryAdd(slowServer.Transport.Output, completion));
            server.Transport.Output.Write("hello"u8);
            var other = new Completion();
            Assert.True(_batch.TryAdd(server.Transport.Output, other));
            _batch.Submit();

            Assert.Single(other.Results);
            Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(await LoopbackBytes.ReceiveExactlyAsync(client, 5).WaitAsync(Patience)));
            if (completion.Results.Count == 0)
            {
                Assert.True(slowServer.HoldsBuffers);
                var received = await LoopbackBytes.ReceiveExactlyAsync(slowClient, written).WaitAsync(Patience);
                var result = Assert.Single(await completion.WaitAsync());
                Assert.False(result.IsCompleted);
                Assert.Equal(payload.AsSpan(0, written).ToArray(), received);
                Assert.False(slowServer.HoldsBuffers);
                return;
            }
        }

        Assert.Fail("the kernel took everything without the peer reading");
    }

    [Fact]
    public async Task AConnectionAbortedBeforeTheSubmission_EndsItsFlushAsCompleted_AndTheOthersAreSent()
    {
        var pairs = await ConnectAsync(2);
        var (_, gone) = pairs[0];
        var (client, server) = pairs[1];
        gone.Transport.Output.Write("never sent"u8);
        var goneCompletion = new Completion();
        Assert.True(_batch.TryAdd(gone.Transport.Output, goneCompletion));
        server.Transport.Output.Write("sent"u8);
        var completion = new Completion();
        Assert.True(_batch.TryAdd(server.Transport.Output, completion));

        gone.Abort(new ConnectionAbortedException("test abort"));
        await gone.DisposeAsync();
        _batch.Submit();

        Assert.True(Assert.Single(goneCompletion.Results).IsCompleted);
        Assert.False(gone.HoldsBuffers);
        Assert.False(Assert.Single(completion.Results).IsCompleted);
        Assert.Equal("sent", System.Text.Encoding.ASCII.GetString(await LoopbackBytes.ReceiveExactlyAsync(client, 4).WaitAsync(Patience)));
    }

    [Fact]
    public async Task APeerThatReset_EndsItsFlushAsCompleted_AndAbortsTheConnection()
    {
        var (client, server) = Assert.Single(await ConnectAsync(1));
        client.LingerState = new LingerOption(true, 0);
        client.Close();
        // The reset reaches the server's socket asynchronously on loopback; sending until it shows is bounded.
        for (var attempt = 0; attempt < 100; attempt++)
        {
            server.Transport.Output.Write("after the reset"u8);
            var completion = new Completion();
            Assert.True(_batch.TryAdd(server.Transport.Output, completion));
            _batch.Submit();
            if (Assert.Single(completion.Results).IsCompleted)
            {
                Assert.IsType<ConnectionAbortedException>(server.AbortReason);
                Assert.False(server.HoldsBuffers);
                return;
            }

            await Task.Delay(10);
        }

        Assert.Fail("sending to a reset peer never failed");
    }

    [Fact]
    public async Task NothingToSend_ALargeFlush_OrAWriterOfAnotherTransport_IsLeftToAnOrdinaryFlush()
    {
        var (client, server) = Assert.Single(await ConnectAsync(1));
        Assert.False(_batch.TryAdd(server.Transport.Output, new Completion()));

        // More than a quarter of the batch: one send of its own costs little more than its share of a batch.
        var large = LoopbackBytes.Pattern(100_000);
        server.Transport.Output.Write(large);
        Assert.False(_batch.TryAdd(server.Transport.Output, new Completion()));
        Assert.True(server.HoldsBuffers);
        var receive = LoopbackBytes.ReceiveExactlyAsync(client, large.Length);
        var flushed = await server.Transport.Output.FlushAsync().AsTask().WaitAsync(Patience);
        Assert.False(flushed.IsCompleted);
        Assert.Equal(large, await receive.WaitAsync(Patience));

        var pipe = new Pipe();
        pipe.Writer.Write("bytes"u8);
        Assert.False(_batch.TryAdd(pipe.Writer, new Completion()));
        Assert.Equal(0, _batch.Count);
    }

    private async Task<List<(Socket Client, LeanSocketConnection Server)>> ConnectAsync(int count)
    {
        var pairs = new List<(Socket, LeanSocketConnection)>();
        for (var i = 0; i < count; i++)
        {
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            var accept = _listener.AcceptAsync();
            await client.ConnectAsync(_listener.EndPoint);
            var server = (LeanSocketConnection)(await accept)!;
            pairs.Add((client, server));
            _pairs.Add((client, server));
        }

        return pairs;
    }

    /// <summary>Records how a batched flush ended; a flush that ends twice shows as two results.</summary>
    private sealed class Completion : IBatchedFlushCompletion
    {
        private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public List<FlushResult> Results { get; } = [];

        public void OnFlushed(FlushResult result)
        {
            lock (Results)
            {
                Results.Add(result);
            }

            _ended.TrySetResult();
        }

        public async Task<List<FlushResult>> WaitAsync()
        {
            await _ended.Task.WaitAsync(Patience);
            return Results;
        }
    }
}
