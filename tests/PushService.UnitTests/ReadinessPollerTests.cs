using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using PushService.Gateway.Transport.Sockets;

namespace PushService.UnitTests;

/// <summary>The lean transport's tests with its inputs waiting in a poller of their own, as on Linux.</summary>
public sealed class LeanSocketTransportWithPollerTests : LeanSocketTransportTests
{
    // Its own, so that the slots counted below are this class's connections only (its tests run one at a time).
    private static readonly ReadinessPoller s_poller = ReadinessPoller.TryCreate(inline: true, out var unavailable)
        ?? throw new InvalidOperationException($"No poller here: {unavailable}.");

    private protected override ReadinessPoller? Poller => s_poller;

    [Fact]
    public async Task AWaitingInput_HoldsOneSlot_AndGivesItBackWhenTheConnectionCloses()
    {
        var before = s_poller.Registered;
        var pending = Server.Transport.Input.ReadAsync();
        Assert.False(pending.IsCompleted);
        Assert.Equal(before + 1, s_poller.Registered);

        await Server.DisposeAsync();

        // The read ends either way the close reaches it first: as the end of the input (the shutdown's readiness
        // notice read the socket before it was closed) or as an abort (the close ended the wait).
        var ended = await Record.ExceptionAsync(async () => Assert.True((await pending.AsTask().WaitAsync(TimeSpan.FromSeconds(10))).IsCompleted));
        Assert.True(ended is null or ConnectionAbortedException, $"The read ended with {ended}.");
        Assert.Equal(before, s_poller.Registered);
    }
}

/// <summary>The lean transport's tests with its inputs waiting through the runtime, as where there is no poller.</summary>
public sealed class LeanSocketTransportWithRuntimeWaitsTests : LeanSocketTransportTests
{
    private protected override ReadinessPoller? Poller => null;
}

/// <summary>The poller itself, on real loopback sockets.</summary>
public sealed class ReadinessPollerTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private readonly ReadinessPoller _poller = ReadinessPoller.TryCreate(inline: false, out var unavailable)
        ?? throw new InvalidOperationException($"No poller here: {unavailable}.");

    private readonly List<Socket> _sockets = [];

    [Fact]
    public async Task ASocketWithBytesAlready_IsReportedAsSoonAsItIsArmed_AndOnlyOnceAWait()
    {
        var (server, client) = Pair();
        client.Send([1, 2, 3]);
        await Task.Delay(50);

        var target = new Target();
        ulong registration = 0;
        Assert.Equal(0, _poller.Arm(server.SafeHandle, target, ref registration));
        await target.Notices.Reader.ReadAsync().AsTask().WaitAsync(Patience);

        // One-shot: the bytes are still there, but nothing more comes until the socket is armed again.
        await Task.Delay(200);
        Assert.False(target.Notices.Reader.TryRead(out _));
        Assert.Equal(0, _poller.Arm(server.SafeHandle, target, ref registration));
        await target.Notices.Reader.ReadAsync().AsTask().WaitAsync(Patience);
        _poller.Release(ref registration);
        Assert.Equal(0ul, registration);
    }

    [Fact]
    public async Task ANoticeForASlotGivenBack_DoesNotReachTheSlotsNextOwner()
    {
        var (oldServer, oldClient) = Pair();
        var (newServer, newClient) = Pair();
        var oldTarget = new Target();
        var newTarget = new Target();
        ulong oldRegistration = 0, newRegistration = 0;

        // The old socket stays armed in the kernel after its slot is given back (as a socket whose close is still in
        // progress does), and its slot goes to the new socket.
        Assert.Equal(0, _poller.Arm(oldServer.SafeHandle, oldTarget, ref oldRegistration));
        var oldSlot = (uint)oldRegistration;
        _poller.Release(ref oldRegistration);
        Assert.Equal(0, _poller.Arm(newServer.SafeHandle, newTarget, ref newRegistration));
        Assert.Equal(oldSlot, (uint)newRegistration);

        oldClient.Send([1]);
        await Task.Delay(300);
        Assert.False(newTarget.Notices.Reader.TryRead(out _));
        Assert.False(oldTarget.Notices.Reader.TryRead(out _));

        newClient.Send([2]);
        await newTarget.Notices.Reader.ReadAsync().AsTask().WaitAsync(Patience);
        _poller.Release(ref newRegistration);
    }

    [Fact]
    public void ArmingAClosedSocket_FailsAsBadFile_AndHoldsNoSlot()
    {
        var (server, _) = Pair();
        server.Dispose();
        var before = _poller.Registered;
        ulong registration = 0;

        Assert.Equal(Errno.BadFile, _poller.Arm(server.SafeHandle, new Target(), ref registration));
        Assert.Equal(0ul, registration);
        Assert.Equal(before, _poller.Registered);
    }

    [Fact]
    public async Task ThePeersEnd_IsReported()
    {
        var (server, client) = Pair();
        var target = new Target();
        ulong registration = 0;
        Assert.Equal(0, _poller.Arm(server.SafeHandle, target, ref registration));

        client.Shutdown(SocketShutdown.Send);

        await target.Notices.Reader.ReadAsync().AsTask().WaitAsync(Patience);
        Assert.Equal(0, server.Receive(new byte[1]));
        _poller.Release(ref registration);
    }

    public void Dispose()
    {
        foreach (var socket in _sockets)
        {
            socket.Dispose();
        }
    }

    private (Socket Server, Socket Client) Pair()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        var server = listener.Accept();
        server.Blocking = false;
        _sockets.Add(server);
        _sockets.Add(client);
        return (server, client);
    }

    private sealed class Target : IReadinessTarget
    {
        public System.Threading.Channels.Channel<bool> Notices { get; } = System.Threading.Channels.Channel.CreateUnbounded<bool>();

        public void Execute() => Notices.Writer.TryWrite(true);
    }
}
