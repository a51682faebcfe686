using PushService.Broker.Control;
using PushService.Gateway.Cluster;
using PushService.Gateway.Telemetry;

namespace PushService.UnitTests;

/// <summary>The console's figures: a node's second-by-second history made from its running totals, and the cluster's sum.</summary>
public sealed class ActivityHistoryTests
{
    private static readonly DateTimeOffset Start = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);

    private static ActivityTotals Totals(long publications, long deliveries, params (int Code, long Count)[] closes) =>
        new(publications, deliveries, closes.ToDictionary(c => c.Code, c => c.Count));

    [Fact]
    public void Report_SpreadsWhatHappenedBetweenReadings_OverTheSecondsInBetween()
    {
        var history = new ActivityHistory();
        history.Record(Start, Totals(1000, 5000));

        // 40 publications and 400 deliveries from second 0 to 2: 20 and 200 in each.
        history.Record(Start.AddSeconds(2), Totals(1040, 5400));

        // 30 from 2 to 2.5 and 4 from 2.5 to 4: second 2 gets 30 plus 4 / 1.5 * 0.5, second 3 the rest.
        history.Record(Start.AddSeconds(2.5), Totals(1070, 5400));
        var report = history.Report(Start.AddSeconds(4), Totals(1074, 5400));

        Assert.Equal(Start.ToUnixTimeSeconds() + 3, report.Second);
        Assert.Equal(ActivityHistory.WindowSeconds, report.Publications.Length);
        Assert.Equal([0, 0, 20, 20], report.Publications[^6..^2]);
        Assert.Equal(200, report.Deliveries[^4]);
        Assert.Equal(200, report.Deliveries[^3]);
        Assert.Equal(31, report.Publications[^2]);
        Assert.Equal(3, report.Publications[^1]);
        Assert.Equal(0, report.Deliveries[^1]);

        // What came before the first reading is never counted: it had no time to be spread over.
        Assert.Equal(74, report.Publications.Sum());
    }

    [Fact]
    public void Report_ForgetsWhatIsOlderThanTheWindow()
    {
        var history = new ActivityHistory();
        history.Record(Start, Totals(0, 0));
        history.Record(Start.AddSeconds(1), Totals(10, 10, (4500, 2)));

        var within = history.Report(Start.AddSeconds(ActivityHistory.WindowSeconds), Totals(10, 10, (4500, 2)));
        Assert.Equal(10, within.Publications[0]);
        Assert.Equal(2, within.Disconnects[4500]);

        var after = history.Report(Start.AddSeconds(ActivityHistory.WindowSeconds + 2), Totals(10, 10, (4500, 2)));
        Assert.Equal(0, after.Publications.Sum());
        Assert.Empty(after.Disconnects);
    }

    [Fact]
    public void Report_CountsDisconnectsByCode_IncludingTheSecondInProgress()
    {
        var history = new ActivityHistory();
        history.Record(Start, Totals(0, 0, (1000, 5)));
        history.Record(Start.AddSeconds(10), Totals(0, 0, (1000, 7), (4001, 1)));
        var report = history.Report(Start.AddSeconds(20.5), Totals(0, 0, (1000, 7), (4001, 1), (4500, 3)));

        Assert.Equal(2, report.Disconnects[1000]);
        Assert.Equal(1, report.Disconnects[4001]);
        Assert.Equal(3, report.Disconnects[4500]);
    }

    [Fact]
    public void Report_AfterALongSilence_SpreadsOnlyOverTheWindow()
    {
        var history = new ActivityHistory();
        history.Record(Start, Totals(0, 0));

        // 3,000 publications over 1,000 s, of which the window holds the last 300 s: 3 a second.
        var report = history.Report(Start.AddSeconds(1000), Totals(3000, 0));
        Assert.All(report.Publications, p => Assert.Equal(3, p));
    }

    [Fact]
    public void Record_AtTheSameInstantTwice_KeepsTheDifferenceForTheNextReading()
    {
        var history = new ActivityHistory();
        history.Record(Start, Totals(0, 0));
        history.Record(Start.AddSeconds(1), Totals(10, 0));
        history.Record(Start.AddSeconds(1), Totals(15, 0));
        var report = history.Report(Start.AddSeconds(2), Totals(16, 0));

        Assert.Equal(16, report.Publications.Sum());
        Assert.Equal(10, report.Publications[^2]);
        Assert.Equal(6, report.Publications[^1]);
    }

    [Fact]
    public void ClusterActivity_AddsTheNodesUp_AlignedOnTheSecondEveryNodeHasReported()
    {
        const int window = ActivityHistory.WindowSeconds;
        var a = new int[window];
        var b = new int[window];
        a[^1] = 7;   // second 1002
        a[^2] = 5;   // second 1001
        a[^3] = 3;   // second 1000
        b[^1] = 11;  // second 1001 (b reported a second earlier)
        b[^2] = 13;  // second 1000
        var reports = new[]
        {
            new NodeReport("a", 1, 1, 10, new Dictionary<string, int>(), new NodeActivity(1002, a, a, new Dictionary<int, long> { [1000] = 2 })),
            new NodeReport("b", 1, 1, 10, new Dictionary<string, int>(), new NodeActivity(1001, b, new int[window], new Dictionary<int, long> { [1000] = 1, [4500] = 4 })),
            new NodeReport("old", 1, 1, 10, new Dictionary<string, int>()),
        };

        var cluster = ClusterActivity.From(reports, DateTimeOffset.FromUnixTimeSeconds(1003));

        Assert.Equal(1001, cluster.Second);
        Assert.Equal(5 + 11, cluster.Publications[^1]);
        Assert.Equal(3 + 13, cluster.Publications[^2]);
        Assert.Equal(5, cluster.Deliveries[^1]);
        Assert.Equal(3, cluster.Disconnects[1000]);
        Assert.Equal(4, cluster.Disconnects[4500]);

        // Each node's rate is over its own newest seconds; a node too old to report activity shows none.
        Assert.Equal(["a", "b", "old"], cluster.Nodes.Select(n => n.Node));
        Assert.Equal((7 + 5 + 3) / 5.0, cluster.Nodes[0].PublishRate);
        Assert.Equal((11 + 13) / 5.0, cluster.Nodes[1].PublishRate);
        Assert.Equal(0, cluster.Nodes[2].DeliveryRate);
    }

    [Fact]
    public void ActivityCounters_AddUpFromManyThreads()
    {
        var counters = new ActivityCounters();
        Parallel.For(0, 1000, i =>
        {
            counters.Published();
            counters.Delivered(3);
            counters.Closed(i % 2 == 0 ? 1000 : 4500);
        });

        var totals = counters.Read();
        Assert.Equal(1000, totals.Publications);
        Assert.Equal(3000, totals.Deliveries);
        Assert.Equal(500, totals.Closes[1000]);
        Assert.Equal(500, totals.Closes[4500]);
    }
}
