using System.Globalization;
using System.Text;
using System.Text.Json;
using PushService.IntegrationTests.Infrastructure;

namespace PushService.IntegrationTests;

/// <summary>
/// <c>loadtests/schedlat.py</c>, which <c>compare.sh</c> runs on <c>perf sched timehist</c> output with
/// <c>PROBE_SCHED=1</c>: a row per labelled process and thread kind with its scheduling-delay percentiles, from lines
/// laid out as perf prints them; and a clear refusal of options or input it cannot use.
/// </summary>
public sealed class SchedLatencyReportTests
{
    private const string Header = """
                   time    cpu  task name                       wait time  sch delay   run time
                            [tid/pid]                          (msec)     (msec)     (msec)
        --------------- ------  ------------------------------  ---------  ---------  ---------

        """;

    [Fact]
    public async Task Report_GroupsThreadsByProcessAndKind_WithTheirDelayPercentiles()
    {
        var timehist = new StringBuilder(Header);
        var time = 1000.0;
        void Line(string task, double delayMs) =>
            timehist.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"{time += 0.001,15:F6} [0001]  {task,-30}  {0.5,9:F3}  {delayMs,9:F3}  {0.1,9:F3}"));

        // A node's send loop woken 200 times, 1 to 200 µs late; two thread-pool threads of the same node; Redis; kernel
        // threads of no labelled process, one kind numbered per core; the idle task; a thread too rarely switched to report.
        for (var i = 1; i <= 200; i++)
        {
            Line("Push send loop[101/100]", i / 1000.0);
            Line($".NET TP Worker[{102 + (i % 2)}/100]", 0.010);
            Line("redis-server[300]", 0.002);
            Line("<idle>", 0);
            if (i <= 150)
            {
                Line("kworker/0:1-events[55]", 0.004);
                Line($"migration/{i % 2}[{18 + (i % 2)}]", 0.003);
            }

            if (i <= 5)
            {
                Line(".NET Timer[104/100]", 9.0);
            }
        }

        var (exitCode, output, error) = await LoadTestScript.RunAsync("schedlat.py", timehist.ToString(), "--label", "gateway=100,200",
            "--label", "redis=300");

        Assert.True(exitCode == 0, error);
        var rows = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement)
            .ToDictionary(row => $"{row.GetProperty("process").GetString()}/{row.GetProperty("thread").GetString()}");
        Assert.Equal(["gateway/.NET TP Worker", "gateway/Push send loop", "other/kworker/0:1-events", "other/migration", "redis/redis-server"],
            rows.Keys.OrderBy(key => key, StringComparer.Ordinal));
        var loop = rows["gateway/Push send loop"];
        Assert.Equal(200, loop.GetProperty("switches").GetInt32());
        Assert.Equal(101, loop.GetProperty("delayP50us").GetInt32());
        Assert.Equal(181, loop.GetProperty("delayP90us").GetInt32());
        Assert.Equal(199, loop.GetProperty("delayP99us").GetInt32());
        Assert.Equal(200, loop.GetProperty("delayP999us").GetInt32());
        Assert.Equal(200, loop.GetProperty("delayMaxus").GetInt32());
        Assert.Equal(200, rows["gateway/.NET TP Worker"].GetProperty("switches").GetInt32());
        Assert.Equal(10, rows["gateway/.NET TP Worker"].GetProperty("delayMaxus").GetInt32());
        Assert.Equal(150, rows["other/kworker/0:1-events"].GetProperty("switches").GetInt32());
        Assert.Equal(150, rows["other/migration"].GetProperty("switches").GetInt32());
        Assert.Equal(2, rows["redis/redis-server"].GetProperty("delayP99us").GetInt32());
    }

    [Theory]
    [InlineData("--label", "gateway=")]
    [InlineData("--label", "gateway=12a")]
    [InlineData("--min-switches", "0")]
    public async Task Report_RefusesAnOptionItCannotUse_WithUsage(string option, string value)
    {
        var (exitCode, output, error) = await LoadTestScript.RunAsync("schedlat.py", Header, option, value);

        Assert.Equal(2, exitCode);
        Assert.Equal("", output.Trim());
        Assert.Contains("usage: schedlat.py", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Report_WithoutTimehistLines_FailsAndSaysSo()
    {
        var (exitCode, output, error) = await LoadTestScript.RunAsync("schedlat.py", Header + "perf: no samples\n");

        Assert.Equal(1, exitCode);
        Assert.Equal("", output.Trim());
        Assert.Contains("no perf sched timehist lines", error, StringComparison.Ordinal);
    }
}
