using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using PushService.Gateway.Connections;

namespace PushService.UnitTests;

public sealed class SendLoopTests
{
    private static readonly TimeSpan Window = TimeSpan.FromMilliseconds(10);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    [Fact]
    public async Task ABusyConnection_IsFlushedOncePerWindow_WithoutAWakeUpPerPush_AndLeavesWhenQuiet()
    {
        await using var loop = new SendScheduler.SendLoop(Window, _time);
        var toClient = new Pipe();
        var connection = new ClientConnection(new PipePair(new Pipe().Reader, toClient.Writer), () => { }, "c1",
            new ConnectionSettings(1 << 20, 1000, 65536), loop, _time, NullLogger.Instance);
        var received = new List<string>();

        // A quiet connection is flushed at once.
        connection.Send(Push(0));
        await ReadPushesAsync(toClient.Reader, received, 1);

        // Ten windows of five pushes a millisecond apart: each window's pushes go out together at its end.
        const int windows = 10;
        var wakeUpsBefore = loop.WakeUps;
        var next = 1;
        for (var window = 0; window < windows; window++)
        {
            for (var i = 0; i < 5; i++)
            {
                connection.Send(Push(next++));
                if (i == 0)
                {
                    // Real time for the loop to react to the window's first push, should it be woken by it.
                    await Task.Delay(20);
                }

                _time.Advance(TimeSpan.FromMilliseconds(1));
            }

            _time.Advance(Window - TimeSpan.FromMilliseconds(5));
            await ReadPushesAsync(toClient.Reader, received, next);

            // Let the loop finish its pass (real time; the fake clock stands still), so the next window's first push
            // finds the connection as the loop left it.
            await Task.Delay(20);
        }

        // One wake-up per window (its end) and one for the first push; setting each window's connection aside again
        // on a push would double that. A little slack for the loop running behind the test's clock.
        Assert.InRange(loop.WakeUps - wakeUpsBefore, windows, windows + 4);

        // A window with nothing to send lets the connection go; a later push is flushed at once, with no clock advance.
        _time.Advance(Window);
        _time.Advance(Window);
        connection.Send(Push(next++));
        await ReadPushesAsync(toClient.Reader, received, next);

        Assert.Equal(Enumerable.Range(0, next).Select(i => $"p{i}"), received);
    }

    private static byte[] Push(int n) => Encoding.UTF8.GetBytes($"p{n}");

    /// <summary>Reads server text frames (unmasked) until <paramref name="total"/> pushes have arrived.</summary>
    private static async Task ReadPushesAsync(PipeReader reader, List<string> received, int total)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (received.Count < total)
        {
            var result = await reader.ReadAsync(timeout.Token);
            var buffer = result.Buffer;
            while (TryReadFrame(ref buffer, out var payload))
            {
                received.AddRange(payload.Split('\n'));
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, out string payload)
    {
        payload = "";
        if (buffer.Length < 2)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[4];
        buffer.Slice(0, Math.Min(4, buffer.Length)).CopyTo(header);
        Assert.Equal(0x81, header[0]);
        long length = header[1];
        var headerLength = 2;
        if (length == 126)
        {
            if (buffer.Length < 4)
            {
                return false;
            }

            length = (header[2] << 8) | header[3];
            headerLength = 4;
        }

        Assert.True(length < 65536);
        if (buffer.Length < headerLength + length)
        {
            return false;
        }

        payload = Encoding.UTF8.GetString(buffer.Slice(headerLength, length));
        buffer = buffer.Slice(headerLength + length);
        return true;
    }
}
