using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using PushService.Broker;
using PushService.Broker.Sequencing;
using PushService.Broker.Specification;

namespace PushService.UnitTests;

/// <summary>
/// The channel sequencer against a history it does not control: it must deliver every offset once, in order, through
/// gaps, duplicates, reordering and history reads that fail, and reset only when history says what was missed is gone.
/// </summary>
public sealed class ChannelSequencerTests
{
    private const string Channel = "c";
    private readonly FakeTimeProvider _time = new();
    private readonly FakeHistory _history = new();
    private readonly BrokerSpecification.RecordingHandler _handler = new();
    private readonly SequencerProgress _progress = new();

    private ChannelSequencer NewSequencer(int maxHeld = 10_000, int pageSize = 1000) =>
        new(Channel, _history.ReadAsync, _handler, new SequencerSettings { Time = _time, MaxHeld = maxHeld, PageSize = pageSize },
            _progress, NullLogger.Instance);

    private async Task<ChannelSequencer> StartedAsync(int maxHeld = 10_000, int pageSize = 1000)
    {
        var sequencer = NewSequencer(maxHeld, pageSize);
        await sequencer.Start(_history.Position);
        return sequencer;
    }

    private long[] Delivered() => [.. _handler.For(Channel).Select(p => p.Offset)];

    /// <summary>Moves the fake clock on until <paramref name="condition"/> holds, letting retries run between steps.</summary>
    private async Task UntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting until {what}; delivered {string.Join(',', Delivered())}");
            _time.Advance(TimeSpan.FromMilliseconds(100));
            await Task.Delay(5);
        }
    }

    [Fact]
    public async Task NextOffsets_AreDeliveredAtOnce_AndDuplicatesDropped()
    {
        var sequencer = await StartedAsync();
        foreach (var p in _history.Publish(3))
        {
            await sequencer.OfferAsync(p);
            await sequencer.OfferAsync(p);
        }

        Assert.Equal([1, 2, 3], Delivered());
        Assert.Equal(0, _history.Reads);
        Assert.False(sequencer.IsBehind);
    }

    [Fact]
    public async Task Gap_IsFilledFromHistory_BeforeTheNewerPublication()
    {
        var sequencer = await StartedAsync();
        var published = _history.Publish(5);
        await sequencer.OfferAsync(published[0]);
        await sequencer.OfferAsync(published[4]);

        await UntilAsync(() => Delivered().Length == 5, "the gap is filled");
        Assert.Equal([1, 2, 3, 4, 5], Delivered());
        Assert.Empty(_handler.Resets);

        // The fill reads up to the channel's position, so 5 comes from history too and its live copy is a duplicate.
        Assert.Equal(4, _progress.Filled);
    }

    [Fact]
    public async Task HistoryUnavailable_ThenAvailable_HoldsNewerPublications_AndNeverResets()
    {
        var sequencer = await StartedAsync();
        var published = _history.Publish(10);
        await sequencer.OfferAsync(published[0]);
        _history.Unavailable = true;

        // Offset 2 never came on pub/sub; the rest arrive while history cannot be read.
        foreach (var p in published.Skip(2))
        {
            await sequencer.OfferAsync(p);
        }

        await UntilAsync(() => _history.FailedReads >= 3, "several reads have failed");
        Assert.Equal([1], Delivered());
        Assert.True(sequencer.IsBehind);
        Assert.Equal(1, _progress.Behind);
        Assert.Empty(_handler.Resets);

        _history.Unavailable = false;
        await UntilAsync(() => Delivered().Length == 10, "history is readable again");
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), Delivered());
        Assert.Empty(_handler.Resets);
        Assert.False(sequencer.IsBehind);
        Assert.Equal(0, _progress.Behind);
        Assert.True(_progress.Retries >= 3);
    }

    [Fact]
    public async Task RetryDelays_Grow_AndStayBounded()
    {
        var settings = new SequencerSettings { FirstRetryDelay = TimeSpan.FromMilliseconds(50), MaxRetryDelay = TimeSpan.FromSeconds(1) };
        var delays = Enumerable.Range(1, 12).Select(settings.RetryDelay).ToList();
        Assert.All(delays, d => Assert.InRange(d, TimeSpan.FromMilliseconds(25), TimeSpan.FromSeconds(1)));
        Assert.InRange(delays[0], TimeSpan.FromMilliseconds(25), TimeSpan.FromMilliseconds(50));
        Assert.InRange(delays[^1], TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task TrimmedHistory_ResetsOnce_AndCarriesOnFromTheCurrentPosition()
    {
        var sequencer = await StartedAsync();
        var published = _history.Publish(10);
        await sequencer.OfferAsync(published[0]);
        _history.TrimBelow(6);
        await sequencer.OfferAsync(published[8]);

        await UntilAsync(() => !_handler.Resets.IsEmpty, "the loss is declared");
        Assert.Single(_handler.Resets);
        Assert.Equal(10, sequencer.Last!.Value.Offset);

        // After the reset delivery goes on from the current position, gap-free.
        await sequencer.OfferAsync(published[9]);
        var next = _history.Publish(1)[0];
        await sequencer.OfferAsync(next);
        Assert.Equal([1, 11], Delivered());
        Assert.Single(_handler.Resets);
    }

    [Fact]
    public async Task NewEpochInHistory_Resets()
    {
        var sequencer = await StartedAsync();
        var published = _history.Publish(3);
        await sequencer.OfferAsync(published[0]);
        _history.NewEpoch();
        _history.Publish(2);
        await sequencer.OfferAsync(published[2]);

        await UntilAsync(() => !_handler.Resets.IsEmpty, "the loss is declared");
        Assert.Equal(_history.Position, sequencer.Last);
        Assert.Single(_handler.Resets);
    }

    [Fact]
    public async Task NewEpochInALivePublication_Resets_AndLateOnesOfTheOldEpochAreIgnored()
    {
        var sequencer = await StartedAsync();
        var old = _history.Publish(2);
        await sequencer.OfferAsync(old[0]);
        _history.NewEpoch();
        var fresh = _history.Publish(2);
        await sequencer.OfferAsync(fresh[0]);
        Assert.Single(_handler.Resets);

        await sequencer.OfferAsync(old[1]);
        await sequencer.OfferAsync(fresh[1]);
        Assert.Single(_handler.Resets);
        Assert.Equal([1, 2], Delivered());
        Assert.Equal(fresh[1].Epoch, _handler.For(Channel)[^1].Epoch);
    }

    [Fact]
    public async Task OutOfOrderArrivals_AreDeliveredInOrder_OnceEach()
    {
        var sequencer = await StartedAsync();
        var published = _history.Publish(6);
        foreach (var index in new[] { 0, 2, 1, 4, 3, 5, 5, 1 })
        {
            await sequencer.OfferAsync(published[index]);
        }

        await UntilAsync(() => Delivered().Length == 6, "every offset is delivered");
        Assert.Equal([1, 2, 3, 4, 5, 6], Delivered());
    }

    [Fact]
    public async Task GapOpeningWhileAFillRuns_IsFilledAfterIt()
    {
        var sequencer = await StartedAsync();
        var published = _history.Publish(3);
        await sequencer.OfferAsync(published[0]);
        var gate = _history.HoldReads();

        // Offset 2 is missing: the fill starts and blocks in history.
        await sequencer.OfferAsync(published[2]);
        await UntilAsync(() => _history.Reads == 1, "the first fill reads");

        // Meanwhile 4 and 5 are published, 4 is lost and 5 arrives: a second gap, opened during the first fill.
        var later = _history.Publish(2);
        await sequencer.OfferAsync(later[1]);
        Assert.Equal([1], Delivered());

        gate.SetResult();
        await UntilAsync(() => Delivered().Length == 5, "both gaps are filled");
        Assert.Equal([1, 2, 3, 4, 5], Delivered());
        Assert.Empty(_handler.Resets);
    }

    [Fact]
    public async Task CatchUp_DeliversWhatHistoryHasBeyondTheLastOffset_AndMarksTheChannelBehindUntilThen()
    {
        var sequencer = await StartedAsync();
        _history.Publish(4);
        _history.Unavailable = true;
        sequencer.RequestCatchUp();
        Assert.True(sequencer.IsBehind);
        await UntilAsync(() => _history.FailedReads >= 2, "the catch-up has failed twice");
        Assert.True(sequencer.IsBehind);

        _history.Unavailable = false;
        await UntilAsync(() => !sequencer.IsBehind, "the catch-up is done");
        Assert.Equal([1, 2, 3, 4], Delivered());
        Assert.Empty(_handler.Resets);
    }

    [Fact]
    public async Task LargeGap_IsReadInPages()
    {
        var sequencer = await StartedAsync(pageSize: 10);
        var published = _history.Publish(35);
        await sequencer.OfferAsync(published[^1]);
        await UntilAsync(() => Delivered().Length == 35, "every page is read");
        Assert.Equal(Enumerable.Range(1, 35).Select(i => (long)i), Delivered());
        Assert.Equal(4, _history.Reads);
    }

    [Fact]
    public async Task HeldPublicationsOverTheLimit_AreDropped_AndReadBackFromHistory()
    {
        var sequencer = await StartedAsync(maxHeld: 5);
        var published = _history.Publish(30);
        _history.Unavailable = true;
        foreach (var p in published.Skip(1))
        {
            await sequencer.OfferAsync(p);
        }

        await UntilAsync(() => _history.FailedReads >= 1, "a read has failed");
        _history.Unavailable = false;
        await UntilAsync(() => Delivered().Length == 30, "everything is read back");
        Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), Delivered());
        Assert.Empty(_handler.Resets);
    }

    [Fact]
    public async Task PublicationsBeforeStart_AreHeld_AndThoseAfterTheStartPositionDelivered()
    {
        var sequencer = NewSequencer();
        var published = _history.Publish(3);
        foreach (var p in published)
        {
            await sequencer.OfferAsync(p);
        }

        Assert.Empty(Delivered());
        await sequencer.Start(new StreamPosition(1, published[0].Epoch));
        Assert.Equal([2, 3], Delivered());
    }

    [Fact]
    public async Task Closed_StopsRetryingAndDeliversNothingMore()
    {
        var sequencer = await StartedAsync();
        var published = _history.Publish(3);
        _history.Unavailable = true;
        await sequencer.OfferAsync(published[2]);
        await UntilAsync(() => _history.FailedReads >= 1, "a read has failed");
        Assert.Equal(1, _progress.Behind);

        sequencer.Close();
        Assert.Equal(0, _progress.Behind);
        var reads = _history.Reads;
        _history.Unavailable = false;
        for (var i = 0; i < 20; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(2);
        }

        Assert.Equal(reads, _history.Reads);
        await sequencer.OfferAsync(published[0]);
        Assert.Empty(Delivered());
    }

    /// <summary>
    /// One channel's stored publications as the Redis history script reads them: the current position, and the
    /// publications after a position in its epoch that are still kept.
    /// </summary>
    private sealed class FakeHistory
    {
        private readonly List<Publication> _stored = [];
        private string _epoch = "e1";
        private long _offset;
        private long _keptFrom = 1;
        private TaskCompletionSource? _gate;
        private int _reads;
        private int _failedReads;

        public volatile bool Unavailable;

        public int Reads => Volatile.Read(ref _reads);

        public int FailedReads => Volatile.Read(ref _failedReads);

        public StreamPosition Position => new(_offset, _epoch);

        public List<Publication> Publish(int count)
        {
            var made = new List<Publication>();
            for (var i = 0; i < count; i++)
            {
                _offset++;
                var p = new Publication(Channel, _offset, _epoch, Encoding.UTF8.GetBytes(_offset.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                lock (_stored)
                {
                    _stored.Add(p);
                }

                made.Add(p);
            }

            return made;
        }

        public void TrimBelow(long offset) => _keptFrom = offset;

        public void NewEpoch()
        {
            _epoch = "e" + Guid.NewGuid().ToString("N")[..6];
            _offset = 0;
            _keptFrom = 1;
            lock (_stored)
            {
                _stored.Clear();
            }
        }

        public TaskCompletionSource HoldReads() => _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        public async ValueTask<HistoryResult> ReadAsync(string channel, StreamPosition since, int limit, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _reads);
            if (_gate is { } gate)
            {
                await gate.Task.WaitAsync(cancellationToken);
            }

            if (Unavailable)
            {
                Interlocked.Increment(ref _failedReads);
                throw new BrokerUnavailableException("The Redis backplane is not connected.");
            }

            List<Publication> after;
            lock (_stored)
            {
                after = since.Epoch == _epoch
                    ? [.. _stored.Where(p => p.Offset > since.Offset && p.Offset >= _keptFrom).Take(limit)]
                    : [];
            }

            return new HistoryResult(Position, after);
        }
    }
}
