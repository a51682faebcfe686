namespace PushService.IntegrationTests.Infrastructure;

/// <summary>Waiting for what other processes do: a condition polled until it holds, or the test fails saying what was awaited.</summary>
internal static class Poll
{
    public static async Task UntilAsync(Func<bool> condition, TimeSpan timeout, Func<string>? failure = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure?.Invoke() ?? "The condition did not become true in time.");
            await Task.Delay(20);
        }
    }

    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string>? failure = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure?.Invoke() ?? "The condition did not become true in time.");
            await Task.Delay(50);
        }
    }
}
