using System.Text.Json;
using PushService.Client;
using PushService.IntegrationTests.Infrastructure;

namespace PushService.IntegrationTests;

/// <summary>
/// Outages under steady publishing, counted: every publish answered 200 must reach every subscriber (live or through
/// recovery), and while the backplane is down publishes must get 503, never a silent 200.
/// </summary>
public sealed class FailureTests
{
    private static int AcknowledgedCount(SteadyPublisher p) => p.Acknowledged.Count;

    private static int UnavailableCount(SteadyPublisher p) => p.Unavailable;

    /// <summary>Reads a subscription until it has every acknowledged sequence number, checking order and continuity.</summary>
    private static async Task<List<ChannelEvent>> ReceiveAllAsync(PushSubscription subscription, IReadOnlyCollection<int> acknowledged, TimeSpan timeout)
    {
        var received = new List<ChannelEvent>();
        var seen = new HashSet<int>();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (!acknowledged.All(seen.Contains))
            {
                var e = await subscription.Events.ReadAsync(cts.Token);
                Assert.NotEqual(ChannelEventKind.Reset, e.Kind);
                if (e.Kind == ChannelEventKind.Message)
                {
                    received.Add(e);
                    seen.Add(e.Data.GetProperty("seq").GetInt32());
                }
            }
        }
        catch (OperationCanceledException)
        {
            var missing = acknowledged.Where(a => !seen.Contains(a)).Take(10);
            Assert.Fail($"{subscription.Channel}: {acknowledged.Count(a => !seen.Contains(a))} acknowledged publications never arrived, e.g. {string.Join(',', missing)}");
        }

        // Offsets gap-free and increasing: nothing stored was skipped, nothing came twice.
        Assert.Equal(Enumerable.Range(1, received.Count).Select(i => (long)i), received.Select(e => e.Offset));
        return received;
    }

    [Fact]
    public async Task RedisKilledAndRestarted_DuringSteadyPublishing_LosesNoAcknowledgedPublication()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var subscriptions = new List<(PushClient Client, PushSubscription Subscription)>();
        for (var i = 0; i < 3; i++)
        {
            var client = await cluster.ClientAsync(i);
            subscriptions.Add((client, await client.SubscribeAsync("ticker")));
        }

        var publisher = new SteadyPublisher(cluster.Nodes, "ticker", TimeSpan.FromMilliseconds(10));
        using var stop = new CancellationTokenSource();
        var publishing = publisher.RunAsync(stop.Token);

        await publisher.WaitForMoreAsync(AcknowledgedCount, 30, "acknowledged publishes before the outage");
        cluster.Redis.Kill();
        await publisher.WaitForMoreAsync(UnavailableCount, 10, "refused publishes while Redis was down");
        await cluster.Nodes[0].WaitUntilUnavailableAsync(TimeSpan.FromSeconds(30));

        await cluster.Redis.LaunchAsync();
        await Task.WhenAll(cluster.Nodes.Select(n => n.WaitUntilReadyAsync(TimeSpan.FromSeconds(30))));
        await publisher.WaitForMoreAsync(AcknowledgedCount, 30, "acknowledged publishes after the outage");
        await stop.CancelAsync();
        await publishing;

        Assert.Equal(0, publisher.RetryAfterMissing);
        Assert.Equal(0, publisher.OtherFailures);

        foreach (var (client, subscription) in subscriptions)
        {
            await ReceiveAllAsync(subscription, publisher.Acknowledged.Keys.ToList(), TimeSpan.FromSeconds(30));

            // The WebSockets stayed up through the outage.
            Assert.Equal(0, client.Reconnects);
        }
    }

    [Fact]
    public async Task NodeKilled_DuringSteadyPublishing_ItsClientsReconnectElsewhereAndMissNothing()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var onVictim = new List<(PushClient Client, PushSubscription Subscription)>();
        for (var i = 0; i < 3; i++)
        {
            var client = await cluster.ClientAsync(0);
            onVictim.Add((client, await client.SubscribeAsync("stream")));
        }

        var elsewhere = await cluster.ClientAsync(1);
        var elsewhereSubscription = await elsewhere.SubscribeAsync("stream");
        Assert.All(onVictim, c => Assert.Equal("node-1", c.Client.NodeId));

        var publisher = new SteadyPublisher(cluster.Nodes, "stream", TimeSpan.FromMilliseconds(10)) { UseNode = i => i != 0 };
        using var stop = new CancellationTokenSource();
        var publishing = publisher.RunAsync(stop.Token);
        await publisher.WaitForMoreAsync(AcknowledgedCount, 20, "acknowledged publishes before the kill");
        cluster.Nodes[0].Kill();
        await publisher.WaitForMoreAsync(AcknowledgedCount, 40, "acknowledged publishes after the kill");
        await stop.CancelAsync();
        await publishing;

        Assert.Equal(0, publisher.OtherFailures);
        Assert.Equal(0, publisher.Unavailable);
        foreach (var (client, subscription) in onVictim)
        {
            await ReceiveAllAsync(subscription, publisher.Acknowledged.Keys.ToList(), TimeSpan.FromSeconds(30));
            Assert.True(client.Reconnects >= 1);
            Assert.NotEqual("node-1", client.NodeId);
            Assert.True(subscription.Recoveries >= 1);
        }

        await ReceiveAllAsync(elsewhereSubscription, publisher.Acknowledged.Keys.ToList(), TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task NodeDraining_SendsClientsElsewhereAtOnce()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var client = await cluster.ClientAsync(0);
        var subscription = await client.SubscribeAsync("drain");
        var publisher = PushPublisher.Create(cluster.Nodes[1].BaseAddress);
        await publisher.PublishAsync("drain", "1");
        await ClusterTests.MessagesAsync(subscription, 1);

        await cluster.Nodes[0].TerminateAsync();
        await publisher.PublishAsync("drain", "2");
        var messages = await ClusterTests.MessagesAsync(subscription, 1);
        Assert.Equal(2, messages[0].Offset);
        Assert.Equal("node-2", client.NodeId);
        Assert.Equal(1001, client.LastClose?.Code);
    }
}
