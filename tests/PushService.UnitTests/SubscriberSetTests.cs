using System.IO.Pipelines;
using Microsoft.Extensions.Logging.Abstractions;
using PushService.Gateway.Configuration;
using PushService.Gateway.Connections;
using PushService.Gateway.Hub;

namespace PushService.UnitTests;

public sealed class SubscriberSetTests : IAsyncDisposable
{
    private readonly SendScheduler.SendLoop _loop = new(TimeSpan.Zero, TimeProvider.System);
    private readonly ClientConnection _connection;

    public SubscriberSetTests()
    {
        var pipe = new Pipe();
        _connection = new ClientConnection(new PipePair(pipe.Reader, pipe.Writer), static _ => { }, pipe, "c1",
            new ConnectionSettings(1 << 20, 1000, 65536), _loop, static (_, _) => ValueTask.CompletedTask, TimeProvider.System, NullLogger.Instance);
    }

    public ValueTask DisposeAsync() => _loop.DisposeAsync();

    private Subscription[] NewSubscriptions(int count) =>
        [.. Enumerable.Range(0, count).Select(_ => new Subscription(_connection, "news") { Namespace = new NamespaceOptions() })];

    private static SubscriberSet SetOf(IEnumerable<Subscription> subscriptions)
    {
        var set = new SubscriberSet();
        foreach (var subscription in subscriptions)
        {
            set.Add(subscription);
        }

        return set;
    }

    private static List<Subscription> Enumerate(SubscriberSet set)
    {
        var seen = new List<Subscription>();
        foreach (var subscription in set)
        {
            seen.Add(subscription);
        }

        return seen;
    }

    [Fact]
    public void AddAndRemove_KeepCountAndMembers_AndReuseFreedSlots()
    {
        var subscriptions = NewSubscriptions(10);
        var set = SetOf(subscriptions);

        Assert.Equal(10, set.Count);
        Assert.Equal(subscriptions, Enumerate(set));

        Assert.True(set.Remove(subscriptions[3]));
        Assert.False(set.Remove(subscriptions[3]));
        Assert.Equal(-1, subscriptions[3].Slot);
        Assert.Equal(9, set.Count);
        Assert.DoesNotContain(subscriptions[3], Enumerate(set));

        var late = NewSubscriptions(1)[0];
        set.Add(late);
        Assert.Equal(3, late.Slot);
        Assert.Equal(10, set.Count);
        Assert.Contains(late, Enumerate(set));
    }

    [Fact]
    public void Remove_OfAStranger_ChangesNothing()
    {
        var members = NewSubscriptions(3);
        var set = SetOf(members);

        var other = new SubscriberSet();
        var stranger = NewSubscriptions(1)[0];
        other.Add(stranger);

        // Same slot number, other set: identity decides, not the index.
        Assert.Equal(0, stranger.Slot);
        Assert.False(set.Remove(stranger));
        Assert.False(set.Remove(NewSubscriptions(1)[0]));
        Assert.Equal(members, Enumerate(set));
    }

    [Fact]
    public void RemovingMost_PacksTheRest_AndTheSetKeepsWorking()
    {
        var subscriptions = NewSubscriptions(1000);
        var set = SetOf(subscriptions);

        var stayers = subscriptions.Where((_, i) => i % 50 == 7).ToArray();
        foreach (var leaver in subscriptions.Except(stayers))
        {
            Assert.True(set.Remove(leaver));
        }

        Assert.Equal(stayers.Length, set.Count);
        Assert.Equal(stayers, Enumerate(set));
        Assert.All(stayers, s => Assert.InRange(s.Slot, 0, stayers.Length * 2));

        foreach (var stayer in stayers)
        {
            Assert.True(set.Remove(stayer));
        }

        Assert.Equal(0, set.Count);
        Assert.Empty(Enumerate(set));

        var again = NewSubscriptions(5);
        Array.ForEach(again, set.Add);

        Assert.Equal(again, Enumerate(set));
    }

    [Fact]
    public void AFanOutInProgress_SeesEveryStayer_WhileOthersLeaveAndJoin()
    {
        var subscriptions = NewSubscriptions(400);
        var set = SetOf(subscriptions);

        var stayers = subscriptions.Where((_, i) => i % 10 == 0).ToHashSet();
        var enumerator = set.GetEnumerator();
        var seen = new HashSet<Subscription>();
        for (var i = 0; i < 200 && enumerator.MoveNext(); i++)
        {
            seen.Add(enumerator.Current);
        }

        // Leavers on both sides of the cursor, enough to pack the set, and newcomers into freed slots.
        foreach (var leaver in subscriptions.Where(s => !stayers.Contains(s)))
        {
            set.Remove(leaver);
        }

        foreach (var newcomer in NewSubscriptions(50))
        {
            set.Add(newcomer);
        }

        while (enumerator.MoveNext())
        {
            seen.Add(enumerator.Current);
        }

        Assert.Subset(seen, stayers);
    }

    [Fact]
    public async Task ConcurrentFanOuts_NeverMissAStayer_WhileChurnersComeAndGo()
    {
        var all = NewSubscriptions(500);
        var set = SetOf(all);
        var stayers = all.Where((_, i) => i % 5 == 0).ToArray();
        var churners = all.Except(stayers).ToArray();

        var churn = Task.Run(() =>
        {
            // The hub serialises changes behind the channel's gate; one writer thread stands for that here. Each round
            // the churners leave in a random order (which packs the set once most are gone) and come back.
            var random = new Random(7);
            for (var round = 0; round < 500; round++)
            {
                random.Shuffle(churners);
                Array.ForEach(churners, c => set.Remove(c));
                random.Shuffle(churners);
                Array.ForEach(churners, set.Add);
            }
        });

        // Fan-outs run for as long as the churn does, so they overlap its changes many times.
        var stayerSet = stayers.ToHashSet();
        var passes = 0;
        while (!churn.IsCompleted)
        {
            var seen = 0;
            foreach (var subscription in set)
            {
                if (stayerSet.Contains(subscription))
                {
                    seen++;
                }
            }

            Assert.Equal(stayers.Length, seen);
            passes++;
        }

        await churn;
        Assert.True(passes > 0);
        Assert.Equal(all.Length, set.Count);
    }
}
