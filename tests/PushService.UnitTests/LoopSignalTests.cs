using System.Diagnostics;
using PushService.Gateway.Connections;

namespace PushService.UnitTests;

/// <summary>
/// The send loop's wake-up: a set signal ends a wait at once, a set from another thread ends a wait without a limit,
/// and a timed wait on a clear signal lasts at least its timeout (the loop's window must not end early).
/// </summary>
public sealed class LoopSignalTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(20);

    [Fact]
    public void AWaitOnASetSignal_ReturnsAtOnce_UntilItIsReset()
    {
        var signal = new LoopSignal();
        signal.Set();
        signal.Set();

        // Without a limit: a signal that was not seen set would wait here forever (the test host's timeout).
        signal.Wait(Timeout.InfiniteTimeSpan);
        signal.Wait(Timeout.InfiniteTimeSpan);

        signal.Reset();
        var started = Stopwatch.GetTimestamp();
        var timeout = TimeSpan.FromMilliseconds(30);
        signal.Wait(timeout);
        Assert.True(Stopwatch.GetElapsedTime(started) >= timeout, "a reset signal ended a timed wait before its timeout");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2.5)]
    [InlineData(40)]
    public void ATimedWaitOnAClearSignal_LastsAtLeastItsTimeout(double milliseconds)
    {
        var signal = new LoopSignal();
        var timeout = TimeSpan.FromMilliseconds(milliseconds);
        var started = Stopwatch.GetTimestamp();
        signal.Wait(timeout);
        Assert.True(Stopwatch.GetElapsedTime(started) >= timeout, $"waited {Stopwatch.GetElapsedTime(started)} of {timeout}");
    }

    [Fact]
    public async Task ASetFromAnotherThread_EndsAWaitWithoutALimit()
    {
        var signal = new LoopSignal();
        for (var i = 0; i < 200; i++)
        {
            signal.Reset();
            var waiter = Task.Factory.StartNew(() => signal.Wait(Timeout.InfiniteTimeSpan), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

            // Sometimes before the waiter sleeps, sometimes after: a set in either order must end the wait.
            if (i % 2 == 0)
            {
                await Task.Delay(1);
            }

            signal.Set();
            await waiter.WaitAsync(Generous);
        }
    }

    [Fact]
    public async Task ASetFromAnotherThread_EndsATimedWaitEarly()
    {
        var signal = new LoopSignal();
        // A wait of an hour: only the set can end it within the test's patience.
        var waiter = Task.Factory.StartNew(() => signal.Wait(TimeSpan.FromHours(1)), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);

        await Task.Delay(20);
        signal.Set();
        await waiter.WaitAsync(Generous);
    }
}
