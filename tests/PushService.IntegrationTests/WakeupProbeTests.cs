using System.Text.Json;
using PushService.IntegrationTests.Infrastructure;

namespace PushService.IntegrationTests;

/// <summary>
/// <c>loadtests/wakeups.py</c>, which <c>compare.sh</c> runs over a measured window with <c>PROBE_WAKEUPS=1</c>: one JSON
/// line of ordered figures, and a clear refusal of options it cannot use.
/// </summary>
public sealed class WakeupProbeTests
{
    [Fact]
    public async Task Probe_PrintsOrderedOvershoots_ForTheSleepsItTook()
    {
        var (exitCode, output, error) = await RunAsync("--seconds", "0.5", "--interval-ms", "2");

        Assert.True(exitCode == 0, error);
        var line = JsonDocument.Parse(output.Trim()).RootElement;

        // Half a second of 2 ms sleeps: at most 250 (each sleep lasts at least its interval), and the machine may be
        // busy enough to wake it late, but never so late that none finished.
        var wakeups = line.GetProperty("wakeups").GetInt32();
        Assert.InRange(wakeups, 1, 250);
        var p50 = line.GetProperty("wakeupP50us").GetInt64();
        var p90 = line.GetProperty("wakeupP90us").GetInt64();
        var p99 = line.GetProperty("wakeupP99us").GetInt64();
        var p999 = line.GetProperty("wakeupP999us").GetInt64();
        var max = line.GetProperty("wakeupMaxus").GetInt64();
        Assert.True(p50 >= 0 && p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max, output);
    }

    [Theory]
    [InlineData("--seconds", "0")]
    [InlineData("--interval-ms", "-1")]
    [InlineData("--seconds", "soon")]
    public async Task Probe_RefusesAnOptionItCannotUse_WithUsage(string option, string value)
    {
        var (exitCode, output, error) = await RunAsync(option, value);

        Assert.Equal(2, exitCode);
        Assert.Equal("", output.Trim());
        Assert.Contains("usage: wakeups.py", error, StringComparison.Ordinal);
    }

    private static Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] arguments) =>
        LoadTestScript.RunAsync("wakeups.py", "", arguments);
}
