using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using PushService.Gateway.Transport;
using PushService.Gateway.Transport.Sockets;

namespace PushService.Benchmarks;

/// <summary>
/// One push written as a WebSocket frame and flushed to a real loopback socket, as a send-loop pass does for a
/// connection in regime A, on each transport: Kestrel's socket transport (its own connection factory, inline
/// scheduling as the gateway configures it) and the gateway's lean one. A thread on the other end drains the socket,
/// so the kernel always has room and every flush completes at once. The time includes the <c>send()</c> system call.
/// </summary>
[MemoryDiagnoser]
public class TransportBenchmarks
{
    private readonly byte[] _push = new byte[120];
    private IConnectionListener _listener = null!;
    private ConnectionContext _kestrel = null!;
    private ConnectionContext _lean = null!;
    private readonly List<Socket> _peers = [];
    private readonly CancellationTokenSource _stop = new();

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _listener = await new LeanSocketTransportFactory(NullLogger<LeanSocketListener>.Instance).BindAsync(new IPEndPoint(IPAddress.Loopback, 0));
        _lean = await ConnectAsync(_listener);

        using var kestrelListener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        kestrelListener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        kestrelListener.Listen();
        var accepted = kestrelListener.AcceptAsync();
        Drain(await ConnectPeerAsync(kestrelListener.LocalEndPoint!));
        var factory = new SocketConnectionContextFactory(new SocketConnectionFactoryOptions { UnsafePreferInlineScheduling = true }, NullLogger.Instance);
        var socket = await accepted;
        // As Kestrel's listener sets it (and the lean one): without it Nagle's algorithm holds small sends back.
        socket.NoDelay = true;
        _kestrel = factory.Create(socket);
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        await _stop.CancelAsync();
        await _kestrel.DisposeAsync();
        await _lean.DisposeAsync();
        await _listener.DisposeAsync();
        _peers.ForEach(peer => peer.Dispose());
    }

    [Benchmark(Baseline = true)]
    public bool KestrelTransport_WriteAndFlushOnePush() => WriteAndFlush(_kestrel.Transport.Output);

    [Benchmark]
    public bool LeanTransport_WriteAndFlushOnePush() => WriteAndFlush(_lean.Transport.Output);

    private bool WriteAndFlush(PipeWriter output)
    {
        WebSocketFrames.Write(output, WebSocketOpcode.Text, _push);
        var flush = output.FlushAsync();
        if (!flush.IsCompletedSuccessfully)
        {
            throw new InvalidOperationException("The flush waited: the peer is not draining.");
        }

        return flush.Result.IsCompleted;
    }

    private async Task<ConnectionContext> ConnectAsync(IConnectionListener listener)
    {
        var accepted = listener.AcceptAsync();
        Drain(await ConnectPeerAsync(listener.EndPoint));
        return (await accepted)!;
    }

    private async Task<Socket> ConnectPeerAsync(EndPoint endpoint)
    {
        var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await peer.ConnectAsync(endpoint);
        _peers.Add(peer);
        return peer;
    }

    private void Drain(Socket peer) => Drain(peer, _stop.Token);

    /// <summary>Reads and drops everything <paramref name="peer"/> receives until <paramref name="stop"/>, on the thread pool.</summary>
    internal static void Drain(Socket peer, CancellationToken stop) => _ = Task.Run(async () =>
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (await peer.ReceiveAsync(buffer, stop) > 0)
            {
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped at cleanup.
        }
    });
}
