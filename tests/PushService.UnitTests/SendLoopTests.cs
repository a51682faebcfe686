using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using Microsoft.Extensions.Logging.Abstractions;
using PushService.Gateway.Connections;

namespace PushService.UnitTests;

/// <summary>
/// The send loop's own thread: it wakes for a connection put on its list, sleeps out a busy connection's coalescing
/// window and flushes it when the window ends (and does not hold one whose pushes are too sparse to gather any), and on
/// disposal flushes what is still waiting before its thread ends.
/// Each connection writes into a pipe read here, so what the loop flushed is what the test reads.
/// </summary>
public sealed class SendLoopTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(20);

    private static (ClientConnection Connection, PipeReader Sent) Connect(SendScheduler.SendLoop loop)
    {
        var pipe = new Pipe();
        var connection = new ClientConnection(new PipePair(new Pipe().Reader, pipe.Writer), static _ => { }, pipe, "c1",
            new ConnectionSettings(1 << 20, 1000, 65536), loop, static (_, _) => ValueTask.CompletedTask, TimeProvider.System, NullLogger.Instance);
        return (connection, pipe.Reader);
    }

    /// <summary>The send loop's view of a connection: its writer.</summary>
    private static ConnectionWriter Writer(ClientConnection connection) => (ConnectionWriter)connection.Outbox;

    /// <summary>One unmasked text frame carrying <paramref name="pushes"/> joined by new lines, as a flush writes them.</summary>
    private static byte[] Frame(params byte[][] pushes)
    {
        var payload = pushes.SelectMany((push, i) => i == 0 ? push : [(byte)'\n', .. push]).ToArray();
        return [0x81, (byte)payload.Length, .. payload];
    }

    /// <summary>Reads what was flushed until <paramref name="count"/> bytes have come, and returns them.</summary>
    private static async Task<byte[]> ReadAsync(PipeReader sent, int count)
    {
        using var cts = new CancellationTokenSource(Generous);
        while (true)
        {
            var result = await sent.ReadAsync(cts.Token);
            if (result.Buffer.Length >= count)
            {
                var bytes = result.Buffer.Slice(0, count).ToArray();
                sent.AdvanceTo(result.Buffer.GetPosition(count));
                return bytes;
            }

            sent.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    [Fact]
    public async Task AConnectionPutOnAnIdleLoop_IsFlushed()
    {
        await using var loop = new SendScheduler.SendLoop(TimeSpan.Zero, TimeProvider.System);
        var (connection, sent) = Connect(loop);

        for (byte i = 1; i <= 3; i++)
        {
            connection.Outbox.Send(new byte[] { i, i });
            Assert.Equal(Frame([i, i]), await ReadAsync(sent, 4));
        }
    }

    /// <summary>
    /// Two pushes read back one after the other: the second flush (at once, the connection's rate being unknown) takes
    /// the loop's first sample of its push interval, a few milliseconds, so from here on the loop holds its pushes.
    /// </summary>
    private static async Task MakeBusyAsync(ClientConnection connection, PipeReader sent, TimeSpan window)
    {
        for (var i = 0; i < 2; i++)
        {
            connection.Outbox.Send(new byte[] { 9 });
            Assert.Equal(Frame([9]), await ReadAsync(sent, 3));
        }

        var interval = Writer(connection).PushInterval;
        Assert.True(interval < window.TotalSeconds * Stopwatch.Frequency, $"pushes read back to back measured {interval} timestamps apart");
    }

    [Theory]
    [InlineData(0, 10, 50, false)] // never flushed: at once
    [InlineData(100, 10, 150, true)] // half the window left, pushes 10 apart: held
    [InlineData(100, 60, 150, false)] // half the window left, the next push 60 away: held for nothing
    [InlineData(100, long.MaxValue, 110, false)] // flushed once only, rate unknown: at once
    [InlineData(100, 10, 180, false)] // within a quarter window of its end: goes with this round
    [InlineData(100, 10, 250, false)] // window over
    public void AConnectionIsHeld_OnlyWhereItsNextPushIsDueBeforeItsWindowEnds(long lastFlush, long pushInterval, long now, bool held)
    {
        Assert.Equal(held, SendScheduler.SendLoop.Holds(lastFlush, pushInterval, now, window: 100, out var readyAt));
        Assert.Equal(lastFlush + 100, readyAt);
        Assert.False(SendScheduler.SendLoop.Holds(lastFlush, pushInterval, now, window: 0, out _));
    }

    [Fact]
    public async Task ABusyConnection_WaitsOutItsWindow_ThenGoesWithoutAnotherWakeUp()
    {
        var window = TimeSpan.FromMilliseconds(400);
        await using var loop = new SendScheduler.SendLoop(window, TimeProvider.System);
        var (connection, sent) = Connect(loop);
        await MakeBusyAsync(connection, sent, window);
        var lastFlush = Writer(connection).LastFlushTimestamp;

        // Flushed just now, pushes milliseconds apart: these wait for the window (less the quarter the loop takes
        // early), then go together, with nothing else scheduled to wake the loop. Timed by the loop's own flush times,
        // which a slow reader here cannot shift.
        connection.Outbox.Send(new byte[] { 2 });
        connection.Outbox.Send(new byte[] { 3 });
        Assert.Equal(Frame([2], [3]), await ReadAsync(sent, 5));
        var apart = Stopwatch.GetElapsedTime(lastFlush, Writer(connection).LastFlushTimestamp);
        Assert.True(apart >= window * 3 / 4, $"flushed {apart} after the last flush, inside the window");
    }

    [Fact]
    public async Task AConnectionWithoutARecordOfBusyPushes_IsNotHeld()
    {
        var window = TimeSpan.FromSeconds(10);
        await using var loop = new SendScheduler.SendLoop(window, TimeProvider.System);
        var (connection, sent) = Connect(loop);
        connection.Outbox.Send(new byte[] { 1 });
        Assert.Equal(Frame([1]), await ReadAsync(sent, 3));

        // Flushed just now, but nothing says another push will come within the window: held, this one would wait ten
        // seconds for company it may never get.
        connection.Outbox.Send(new byte[] { 2 });
        Assert.Equal(Frame([2]), await ReadAsync(sent, 3).WaitAsync(window / 2));
    }

    [Fact]
    public async Task AConnectionWhoseWindowEndsAfterTheLoopWakes_DoesNotWakeItEarly()
    {
        // Long enough that a starved test thread (CI runs the test assemblies side by side on two cores) still sends
        // the first push inside the first window, sees the loop asleep, and sends the second within a quarter window of
        // it: with 1 s a run under load once found the window already over and the loop never holding anything.
        var window = TimeSpan.FromSeconds(4);
        await using var loop = new SendScheduler.SendLoop(window, TimeProvider.System);
        var (first, firstSent) = Connect(loop);
        var (second, secondSent) = Connect(loop);
        await MakeBusyAsync(first, firstSent, window);
        await MakeBusyAsync(second, secondSent, window);

        // The first connection's push wakes the idle loop, which holds it and sleeps until the first window ends. The
        // second flushed later, so its window ends later still: its push waits for that wake-up instead of making one,
        // and goes with the first's (it is due within a quarter window of it).
        first.Outbox.Send(new byte[] { 2 });
        Assert.True(SpinWait.SpinUntil(() => loop.SleepsUntil != long.MaxValue, Generous), "the loop never slept with a deadline");
        var rounds = loop.Rounds;
        second.Outbox.Send(new byte[] { 2 });

        Assert.Equal(Frame([2]), await ReadAsync(firstSent, 3));
        Assert.Equal(Frame([2]), await ReadAsync(secondSent, 3));
        Assert.Equal(rounds + 1, loop.Rounds);
    }

    [Fact]
    public async Task Disposing_FlushesWhatWaitsForItsWindow_AndEnds()
    {
        var window = TimeSpan.FromMilliseconds(500);
        var loop = new SendScheduler.SendLoop(window, TimeProvider.System);
        var (connection, sent) = Connect(loop);
        await MakeBusyAsync(connection, sent, window);

        connection.Outbox.Send(new byte[] { 2 });
        await loop.DisposeAsync().AsTask().WaitAsync(Generous);

        Assert.True(sent.TryRead(out var rest), "nothing was flushed before the loop ended");
        Assert.Equal(Frame([2]), rest.Buffer.ToArray());
    }
}
