using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging.Abstractions;
using PushService.Gateway.Transport;
using PushService.Gateway.Transport.Sockets;

namespace PushService.Benchmarks;

/// <summary>
/// A send loop's round in regime A: one push to each of 100 connections on the lean transport over real loopback
/// sockets, flushed socket by socket (a <c>send()</c> each) or through a <see cref="SendBatch"/> (one io_uring
/// submission for the round). Tasks on the other end drain every socket, so the kernel always has room. Times are per
/// push and include the system calls and the kernel's loopback work, which runs in the sender's call.
/// </summary>
[MemoryDiagnoser]
public class SendBatchBenchmarks
{
    private const int Connections = 100;

    private readonly byte[] _push = new byte[120];
    private readonly List<ConnectionContext> _connections = [];
    private readonly List<Socket> _peers = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Completion _completion = new();
    private IConnectionListener _listener = null!;
    private SendBatch _batch = null!;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _listener = await new LeanSocketTransportFactory(NullLogger<LeanSocketListener>.Instance).BindAsync(new IPEndPoint(IPAddress.Loopback, 0));
        for (var i = 0; i < Connections; i++)
        {
            var accepted = _listener.AcceptAsync();
            var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await peer.ConnectAsync(_listener.EndPoint);
            _peers.Add(peer);
            TransportBenchmarks.Drain(peer, _stop.Token);
            _connections.Add((await accepted)!);
        }

        _batch = SendBatch.TryCreate(256, out var unavailable) ?? throw new InvalidOperationException($"No io_uring here: {unavailable}");
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        await _stop.CancelAsync();
        foreach (var connection in _connections)
        {
            await connection.DisposeAsync();
        }

        _batch.Dispose();
        await _listener.DisposeAsync();
        _peers.ForEach(peer => peer.Dispose());
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Connections)]
    public int SendEachSocket()
    {
        var completed = 0;
        foreach (var connection in _connections)
        {
            var output = connection.Transport.Output;
            WebSocketFrames.Write(output, WebSocketOpcode.Text, _push);
            var flush = output.FlushAsync();
            if (!flush.IsCompletedSuccessfully)
            {
                throw new InvalidOperationException("The flush waited: the peer is not draining.");
            }

            completed += flush.Result.IsCompleted ? 0 : 1;
        }

        return completed;
    }

    [Benchmark(OperationsPerInvoke = Connections)]
    public int SendAsOneBatch()
    {
        foreach (var connection in _connections)
        {
            var output = connection.Transport.Output;
            WebSocketFrames.Write(output, WebSocketOpcode.Text, _push);
            if (!_batch.TryAdd(output, _completion))
            {
                throw new InvalidOperationException("The batch refused a flush.");
            }
        }

        _completion.Completed = 0;
        _batch.Submit();
        return _completion.Completed;
    }

    private sealed class Completion : IBatchedFlushCompletion
    {
        public int Completed { get; set; }

        public void OnFlushed(FlushResult result)
        {
            if (result.IsCompleted)
            {
                throw new InvalidOperationException("A batched send failed.");
            }

            Completed++;
        }
    }
}
