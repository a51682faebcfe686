using System.Diagnostics;
using System.Net;
using PushService.Broker.Redis.Resp;

namespace PushService.UnitTests;

/// <summary>How the broker's own Redis connections wait to try again: a growing backoff, cut short when another reached the server.</summary>
public sealed class RespRetryTests
{
    private static RespServer Server() => new(new IPEndPoint(IPAddress.Loopback, 6379), null, null, null, "test");

    [Fact]
    public async Task AConnectionDeepInItsBackoff_TriesAtOnce_WhenAnotherReachedTheServer()
    {
        var server = Server();
        var attempts = new List<TimeSpan>();
        var watch = Stopwatch.StartNew();
        using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var fourth = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var retrying = RespSocket.RetryAsync(server, () =>
        {
            lock (attempts)
            {
                attempts.Add(watch.Elapsed);
                if (attempts.Count == 3)
                {
                    fourth.TrySetResult();
                }

                return Task.FromResult(attempts.Count == 4);
            }
        }, static () => false, stopping.Token);

        // Three failed attempts (after 250, 500 and 1,000 ms): the next wait is the longest, 2 s. A connection that
        // reaches the server a moment into it ends it.
        await fourth.Task.WaitAsync(stopping.Token);
        await Task.Delay(100, stopping.Token);
        var signalled = watch.Elapsed;
        server.SignalReached();

        Assert.True(await retrying.WaitAsync(stopping.Token));
        Assert.Equal(4, attempts.Count);
        Assert.True(attempts[3] - signalled < TimeSpan.FromSeconds(1), $"tried {attempts[3] - signalled} after the signal, as if it had waited out its 2 s");
        Assert.True(attempts[2] - attempts[1] >= TimeSpan.FromMilliseconds(900), "the third wait was cut short without a signal");
    }

    [Fact]
    public async Task ASignalWhileAnAttemptFails_IsNotMissed()
    {
        var server = Server();
        var attempts = new List<TimeSpan>();
        using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var watch = Stopwatch.StartNew();

        // The fourth attempt fails, but another connection got through while it was failing: the fifth follows at once,
        // not after the 2 s wait the fourth failure would otherwise earn.
        var ok = await RespSocket.RetryAsync(server, () =>
        {
            attempts.Add(watch.Elapsed);
            if (attempts.Count == 4)
            {
                server.SignalReached();
            }

            return Task.FromResult(attempts.Count == 5);
        }, static () => false, stopping.Token);

        Assert.True(ok);
        Assert.Equal(5, attempts.Count);
        Assert.True(attempts[4] - attempts[3] < TimeSpan.FromSeconds(1), $"tried again {attempts[4] - attempts[3]} later");
    }

    [Fact]
    public async Task Stopping_EndsTheWait()
    {
        var server = Server();
        using var stopping = new CancellationTokenSource();
        var retrying = RespSocket.RetryAsync(server, static () => Task.FromResult(false), static () => false, stopping.Token);
        await stopping.CancelAsync();
        Assert.False(await retrying.WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
