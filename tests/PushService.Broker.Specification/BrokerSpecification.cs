using System.Collections.Concurrent;
using System.Text;
using PushService.Broker;
using Xunit;

namespace PushService.Broker.Specification;

/// <summary>
/// What every broker must do, run unchanged against the in-memory broker and against real Redis (as SignalR's
/// ScaleoutHubLifetimeManagerTests). A subclass says how to make a broker; each test uses fresh channel names.
/// </summary>
public abstract class BrokerSpecification : IAsyncLifetime
{
    private readonly List<IBroker> _brokers = [];

    /// <summary>Makes a started broker delivering to <paramref name="handler"/>. Two brokers made by one test share a backplane.</summary>
    protected abstract Task<IBroker> CreateBrokerAsync(IBrokerEventHandler handler);

    /// <summary>Advances time for time-to-live checks: fake time in memory, real waiting against Redis.</summary>
    protected abstract Task AdvanceTimeAsync(TimeSpan by);

    /// <summary>The shortest history time to live the broker honours (Redis works in milliseconds).</summary>
    protected virtual TimeSpan ShortTtl => TimeSpan.FromSeconds(1);

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual async Task DisposeAsync()
    {
        foreach (var broker in _brokers)
        {
            if (broker is IAsyncDisposable disposable)
            {
                await disposable.DisposeAsync();
            }
        }
    }

    protected static PublishOptions History(int size = 100, TimeSpan? ttl = null, string? key = null) =>
        new() { HistorySize = size, HistoryTtl = ttl ?? TimeSpan.FromMinutes(5), IdempotencyKey = key };

    protected static string NewChannel() => "spec:" + Guid.NewGuid().ToString("N");

    protected static byte[] Json(string text) => Encoding.UTF8.GetBytes(text);

    protected async Task<(IBroker Broker, RecordingHandler Handler)> NewBrokerAsync()
    {
        var handler = new RecordingHandler();
        var broker = await CreateBrokerAsync(handler);
        _brokers.Add(broker);
        return (broker, handler);
    }

    [Fact]
    public async Task Publish_AssignsGapFreeIncreasingOffsetsInOneEpoch()
    {
        var (broker, _) = await NewBrokerAsync();
        var channel = NewChannel();
        var results = new List<PublishResult>();
        for (var i = 0; i < 5; i++)
        {
            results.Add(await broker.PublishAsync(channel, Json($"{{\"n\":{i}}}"), History()));
        }

        Assert.Equal([1L, 2, 3, 4, 5], results.Select(r => r.Position.Offset));
        Assert.Single(results.Select(r => r.Position.Epoch).Distinct());
        Assert.All(results, r => Assert.False(r.Duplicate));
    }

    [Fact]
    public async Task Publish_ConcurrentPublishersGetDistinctGapFreeOffsets()
    {
        var (broker, _) = await NewBrokerAsync();
        var channel = NewChannel();
        var tasks = Enumerable.Range(0, 200).Select(i => broker.PublishAsync(channel, Json(i.ToString()), History(size: 500)).AsTask());
        var offsets = (await Task.WhenAll(tasks)).Select(r => r.Position.Offset).Order().ToList();
        Assert.Equal(Enumerable.Range(1, 200).Select(i => (long)i), offsets);
    }

    [Fact]
    public async Task Channels_HaveIndependentOffsets()
    {
        var (broker, _) = await NewBrokerAsync();
        var a = NewChannel();
        var b = NewChannel();
        await broker.PublishAsync(a, Json("1"), History());
        await broker.PublishAsync(a, Json("2"), History());
        var first = await broker.PublishAsync(b, Json("1"), History());
        Assert.Equal(1, first.Position.Offset);
    }

    [Fact]
    public async Task Subscribed_ReceivesPublicationsInOffsetOrderWithDataIntact()
    {
        var (broker, handler) = await NewBrokerAsync();
        var channel = NewChannel();
        await broker.SubscribeAsync(channel);
        for (var i = 1; i <= 50; i++)
        {
            await broker.PublishAsync(channel, Json($"{{\"i\":{i},\"s\":\"é\\n\"}}"), History());
        }

        var received = await handler.WaitForAsync(channel, 50);
        Assert.Equal(Enumerable.Range(1, 50).Select(i => (long)i), received.Select(p => p.Offset));
        Assert.Equal("{\"i\":7,\"s\":\"é\\n\"}", Encoding.UTF8.GetString(received[6].Data.Span));
    }

    [Fact]
    public async Task Subscribe_ReturnsAPositionAfterWhichEveryPublicationIsDelivered()
    {
        var (broker, handler) = await NewBrokerAsync();
        var channel = NewChannel();
        for (var i = 1; i <= 3; i++)
        {
            await broker.PublishAsync(channel, Json(i.ToString()), History());
        }

        // Publications keep coming while the subscription is taken: the position splits them into those the
        // subscriber reads from history and those it is sure to be delivered.
        using var stop = new CancellationTokenSource();
        var publisher = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await broker.PublishAsync(channel, Json("during"), History(size: 10_000));
            }
        });

        await Task.Delay(20);
        var position = await broker.SubscribeAsync(channel);
        stop.Cancel();
        await publisher;
        var lastPublished = 0L;
        for (var i = 0; i < 5; i++)
        {
            lastPublished = (await broker.PublishAsync(channel, Json("after"), History(size: 10_000))).Position.Offset;
        }

        Assert.InRange(position.Offset, 3, lastPublished);
        Assert.Equal((await broker.HistoryAsync(channel, new HistoryQuery { Limit = 0 })).Position.Epoch, position.Epoch);
        await handler.WaitUntilAsync(() => handler.For(channel).Any(p => p.Offset == lastPublished));
        var delivered = handler.For(channel).Select(p => p.Offset).Where(o => o > position.Offset).ToList();
        Assert.Equal(Enumerable.Range((int)position.Offset + 1, (int)(lastPublished - position.Offset)).Select(i => (long)i), delivered);
    }

    [Fact]
    public async Task NotSubscribed_ReceivesNothing_AndUnsubscribeStopsDelivery()
    {
        var (broker, handler) = await NewBrokerAsync();
        var quiet = NewChannel();
        var loud = NewChannel();
        await broker.SubscribeAsync(loud);
        await broker.PublishAsync(quiet, Json("1"), History());
        await broker.PublishAsync(loud, Json("1"), History());
        await handler.WaitForAsync(loud, 1);

        await broker.UnsubscribeAsync(loud);
        await broker.PublishAsync(loud, Json("2"), History());

        // A marker on a subscribed channel, published after, proves the broker had its chance to deliver.
        var marker = NewChannel();
        await broker.SubscribeAsync(marker);
        await broker.PublishAsync(marker, Json("1"), History());
        await handler.WaitForAsync(marker, 1);

        Assert.Empty(handler.For(quiet));
        Assert.Single(handler.For(loud));
    }

    [Fact]
    public async Task History_ReturnsPublicationsAfterSince()
    {
        var (broker, _) = await NewBrokerAsync();
        var channel = NewChannel();
        PublishResult last = default;
        for (var i = 1; i <= 10; i++)
        {
            last = await broker.PublishAsync(channel, Json(i.ToString()), History());
        }

        var since = new StreamPosition(6, last.Position.Epoch);
        var history = await broker.HistoryAsync(channel, new HistoryQuery { Since = since });
        Assert.Equal(last.Position, history.Position);
        Assert.Equal([7L, 8, 9, 10], history.Publications.Select(p => p.Offset));
        Assert.Equal("7", Encoding.UTF8.GetString(history.Publications[0].Data.Span));
        Assert.True(history.IsCompleteSince(since));
    }

    [Fact]
    public async Task History_WithLimit_ReturnsFirstAfterSinceOrNewestWithout()
    {
        var (broker, _) = await NewBrokerAsync();
        var channel = NewChannel();
        PublishResult last = default;
        for (var i = 1; i <= 10; i++)
        {
            last = await broker.PublishAsync(channel, Json(i.ToString()), History());
        }

        var paged = await broker.HistoryAsync(channel, new HistoryQuery { Since = new StreamPosition(2, last.Position.Epoch), Limit = 3 });
        Assert.Equal([3L, 4, 5], paged.Publications.Select(p => p.Offset));
        Assert.False(paged.IsCompleteSince(new StreamPosition(2, last.Position.Epoch)));

        var newest = await broker.HistoryAsync(channel, new HistoryQuery { Limit = 3 });
        Assert.Equal([8L, 9, 10], newest.Publications.Select(p => p.Offset));

        var positionOnly = await broker.HistoryAsync(channel, new HistoryQuery { Limit = 0 });
        Assert.Empty(positionOnly.Publications);
        Assert.Equal(10, positionOnly.Position.Offset);
    }

    [Fact]
    public async Task History_IsBoundedBySize_AndRecoveryBeyondItIsIncomplete()
    {
        var (broker, _) = await NewBrokerAsync();
        var channel = NewChannel();
        PublishResult last = default;
        for (var i = 1; i <= 10; i++)
        {
            last = await broker.PublishAsync(channel, Json(i.ToString()), History(size: 4));
        }

        var all = await broker.HistoryAsync(channel, new HistoryQuery());
        Assert.Equal([7L, 8, 9, 10], all.Publications.Select(p => p.Offset));

        var since = new StreamPosition(2, last.Position.Epoch);
        var recovery = await broker.HistoryAsync(channel, new HistoryQuery { Since = since });
        Assert.False(recovery.IsCompleteSince(since));
        Assert.True(recovery.IsCompleteSince(new StreamPosition(6, last.Position.Epoch)));
    }

    [Fact]
    public async Task History_ExpiresAfterTtl_ButOffsetsKeepCounting()
    {
        var (broker, _) = await NewBrokerAsync();
        var channel = NewChannel();
        await broker.PublishAsync(channel, Json("1"), History(ttl: ShortTtl));
        await broker.PublishAsync(channel, Json("2"), History(ttl: ShortTtl));
        await AdvanceTimeAsync(ShortTtl + ShortTtl);

        var history = await broker.HistoryAsync(channel, new HistoryQuery());
        Assert.Empty(history.Publications);
        Assert.Equal(2, history.Position.Offset);

        var next = await broker.PublishAsync(channel, Json("3"), History(ttl: ShortTtl));
        Assert.Equal(3, next.Position.Offset);
        Assert.Equal(history.Position.Epoch, next.Position.Epoch);
    }

    [Fact]
    public async Task History_WithAnotherEpoch_ReturnsNothingAndIsIncomplete()
    {
        var (broker, _) = await NewBrokerAsync();
        var channel = NewChannel();
        await broker.PublishAsync(channel, Json("1"), History());
        var since = new StreamPosition(0, "other-epoch");
        var history = await broker.HistoryAsync(channel, new HistoryQuery { Since = since });
        Assert.Empty(history.Publications);
        Assert.False(history.IsCompleteSince(since));
    }

    [Fact]
    public async Task NoHistory_StillAdvancesOffsetsAndDelivers()
    {
        var (broker, handler) = await NewBrokerAsync();
        var channel = NewChannel();
        await broker.SubscribeAsync(channel);
        await broker.PublishAsync(channel, Json("1"), new PublishOptions());
        var second = await broker.PublishAsync(channel, Json("2"), new PublishOptions());
        Assert.Equal(2, second.Position.Offset);
        Assert.Equal(2, (await handler.WaitForAsync(channel, 2)).Count);
        Assert.Empty((await broker.HistoryAsync(channel, new HistoryQuery())).Publications);
    }

    [Fact]
    public async Task IdempotencyKey_ReturnsFirstResultAndPublishesOnce()
    {
        var (broker, handler) = await NewBrokerAsync();
        var channel = NewChannel();
        await broker.SubscribeAsync(channel);
        var first = await broker.PublishAsync(channel, Json("{\"v\":1}"), History(key: "k-1"));
        var again = await broker.PublishAsync(channel, Json("{\"v\":1}"), History(key: "k-1"));
        var other = await broker.PublishAsync(channel, Json("{\"v\":2}"), History(key: "k-2"));

        Assert.False(first.Duplicate);
        Assert.True(again.Duplicate);
        Assert.Equal(first.Position, again.Position);
        Assert.Equal(2, other.Position.Offset);
        Assert.Equal(2, (await handler.WaitForAsync(channel, 2)).Count);
        Assert.Equal(2, (await broker.HistoryAsync(channel, new HistoryQuery())).Publications.Count);
    }

    [Fact]
    public async Task IdempotencyKey_WithOtherData_IsAConflict()
    {
        var (broker, _) = await NewBrokerAsync();
        var channel = NewChannel();
        await broker.PublishAsync(channel, Json("{\"v\":1}"), History(key: "k"));
        await Assert.ThrowsAsync<IdempotencyConflictException>(() => broker.PublishAsync(channel, Json("{\"v\":2}"), History(key: "k")).AsTask());
    }

    [Fact]
    public async Task IdempotencyKey_IsPerChannel()
    {
        var (broker, _) = await NewBrokerAsync();
        var a = await broker.PublishAsync(NewChannel(), Json("1"), History(key: "same"));
        var b = await broker.PublishAsync(NewChannel(), Json("1"), History(key: "same"));
        Assert.False(a.Duplicate);
        Assert.False(b.Duplicate);
    }

    [Fact]
    public async Task History_OfUnknownChannel_IsEmptyAtOffsetZero()
    {
        var (broker, _) = await NewBrokerAsync();
        var history = await broker.HistoryAsync(NewChannel(), new HistoryQuery());
        Assert.Equal(0, history.Position.Offset);
        Assert.False(string.IsNullOrEmpty(history.Position.Epoch));
        Assert.Empty(history.Publications);
    }

    [Fact]
    public async Task Position_IsStableBetweenReads()
    {
        var (broker, _) = await NewBrokerAsync();
        var channel = NewChannel();
        var before = await broker.HistoryAsync(channel, new HistoryQuery { Limit = 0 });
        var published = await broker.PublishAsync(channel, Json("1"), History());
        Assert.Equal(before.Position.Epoch, published.Position.Epoch);
    }

    [Fact]
    public async Task JoinLeave_ReachSubscribedNodes()
    {
        var (broker, handler) = await NewBrokerAsync();
        var channel = NewChannel();
        await broker.SubscribeAsync(channel);
        await broker.PublishJoinLeaveAsync(channel, new PresenceEntry("c1", "u1"), join: true);
        await broker.PublishJoinLeaveAsync(channel, new PresenceEntry("c1", "u1"), join: false);
        await handler.WaitUntilAsync(() => handler.JoinLeaves.Count(j => j.Channel == channel) == 2);
        Assert.Equal([true, false], handler.JoinLeaves.Where(j => j.Channel == channel).Select(j => j.Join));
        Assert.All(handler.JoinLeaves.Where(j => j.Channel == channel), j => Assert.Equal(new PresenceEntry("c1", "u1"), j.Entry));
    }

    /// <summary>Records what a broker delivers, per channel.</summary>
    public sealed class RecordingHandler : IBrokerEventHandler
    {
        private readonly ConcurrentDictionary<string, List<Publication>> _received = new();
        private readonly SemaphoreSlim _signal = new(0);

        public ValueTask HandlePublicationAsync(Publication publication)
        {
            var list = _received.GetOrAdd(publication.Channel, _ => []);
            lock (list)
            {
                list.Add(publication);
            }

            _signal.Release();
            return ValueTask.CompletedTask;
        }

        public ConcurrentQueue<string> Resets { get; } = new();

        public ValueTask HandleStreamResetAsync(string channel)
        {
            Resets.Enqueue(channel);
            _signal.Release();
            return ValueTask.CompletedTask;
        }

        public ConcurrentQueue<(string Channel, PresenceEntry Entry, bool Join)> JoinLeaves { get; } = new();

        public ValueTask HandleJoinLeaveAsync(string channel, PresenceEntry entry, bool join)
        {
            JoinLeaves.Enqueue((channel, entry, join));
            _signal.Release();
            return ValueTask.CompletedTask;
        }

        public async Task WaitUntilAsync(Func<bool> condition, TimeSpan? timeout = null)
        {
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
            while (!condition())
            {
                try
                {
                    await _signal.WaitAsync(TimeSpan.FromMilliseconds(100), cts.Token);
                }
                catch (OperationCanceledException)
                {
                    Assert.Fail("The condition did not become true in time.");
                }
            }
        }

        public List<Publication> For(string channel)
        {
            var list = _received.GetOrAdd(channel, _ => []);
            lock (list)
            {
                return [.. list];
            }
        }

        public async Task<List<Publication>> WaitForAsync(string channel, int count, TimeSpan? timeout = null)
        {
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
            while (For(channel).Count < count)
            {
                try
                {
                    await _signal.WaitAsync(TimeSpan.FromMilliseconds(100), cts.Token);
                }
                catch (OperationCanceledException)
                {
                    Assert.Fail($"Expected {count} publications on {channel}, got {For(channel).Count}.");
                }
            }

            return For(channel);
        }
    }
}
