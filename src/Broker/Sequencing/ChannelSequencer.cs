using Microsoft.Extensions.Logging;

namespace PushService.Broker.Sequencing;

/// <summary>Reads a channel's publications after <paramref name="since"/> (at most <paramref name="limit"/>) and its current position.</summary>
internal delegate ValueTask<HistoryResult> HistoryReader(string channel, StreamPosition since, int limit, CancellationToken cancellationToken);

/// <summary>
/// Keeps one channel's delivery to this node gap-free and in offset order, whatever the backplane does: publications
/// lost on pub/sub, a reconnect, duplicates, a history read that fails. It remembers the last offset it delivered;
/// a publication right after it is delivered at once, one further on opens a gap that is filled from history first.
/// </summary>
/// <remarks>
/// <para>
/// Continuity is declared lost only from what history answers (a new epoch, or history that no longer holds what was
/// missed), never from a call that failed: while history cannot be read the sequencer waits and tries again with a
/// growing delay (logged once per outage) and holds the publications that arrive meanwhile, up to
/// <see cref="SequencerSettings.MaxHeld"/>; past that it drops what it holds and reads it back from history too.
/// </para>
/// <para>
/// One caller at a time does the work (the one that found the sequencer idle); others leave their publication in the
/// held set and return, so the pub/sub reader is never blocked by a gap fill. The common case, the next offset with
/// nobody working, is delivered on the caller's thread with one lock taken twice and nothing allocated.
/// </para>
/// </remarks>
internal sealed partial class ChannelSequencer
{
    private readonly Lock _lock = new();
    private readonly string _channel;
    private readonly HistoryReader _history;
    private readonly IBrokerEventHandler _handler;
    private readonly SequencerSettings _settings;
    private readonly SequencerProgress _progress;
    private readonly ILogger _logger;
    // Not linked to the broker's stopping token, which would keep a registration per channel ever subscribed: the
    // broker closes every sequencer when it stops.
    private readonly CancellationTokenSource _closed = new();
    private readonly List<Publication> _held = [];
    private readonly Queue<string> _retiredEpochs = new();
    private StreamPosition? _last;
    private bool _working;
    private bool _catchUpWanted;
    private bool _behind;
    private volatile bool _closeRequested;

    public ChannelSequencer(string channel, HistoryReader history, IBrokerEventHandler handler, SequencerSettings settings,
        SequencerProgress progress, ILogger logger)
    {
        _channel = channel;
        _history = history;
        _handler = handler;
        _settings = settings;
        _progress = progress;
        _logger = logger;

        // Until Start, whatever arrives is held: the subscriber owns the work until it knows where delivery starts.
        _working = true;
    }

    public string Channel => _channel;

    /// <summary>The last position delivered to the node; null until <see cref="Start"/>.</summary>
    public StreamPosition? Last
    {
        get
        {
            lock (_lock)
            {
                return _last;
            }
        }
    }

    /// <summary>The current epoch, read without the lock: only to reuse its string when decoding.</summary>
    public string? KnownEpoch => Volatile.Read(ref _knownEpoch);

    private string? _knownEpoch;

    /// <summary>True while a gap fill or a catch-up is wanted or running.</summary>
    public bool IsBehind
    {
        get
        {
            lock (_lock)
            {
                return _behind;
            }
        }
    }

    public bool IsClosed => _closeRequested;

    /// <summary>Sets where delivery starts (the position read once the subscription was in place) and delivers what arrived meanwhile.</summary>
    public Task Start(StreamPosition position)
    {
        lock (_lock)
        {
            _last = position;
            Volatile.Write(ref _knownEpoch, position.Epoch);
        }

        return WorkAsync(null);
    }

    /// <summary>
    /// A publication read from pub/sub, in the order it came. Delivered now when it is the next one and nobody else is
    /// working; otherwise held for whoever is, or handed to a worker that fills the gap first. Completes once this
    /// caller's part is done, never after a history read.
    /// </summary>
    public ValueTask OfferAsync(Publication publication)
    {
        lock (_lock)
        {
            if (_closeRequested)
            {
                return default;
            }

            if (_working)
            {
                Hold(publication);
                return default;
            }

            _working = true;
            if (_catchUpWanted || _last is not { } last || publication.Epoch != last.Epoch || publication.Offset != last.Offset + 1)
            {
                // Detached: the caller is the pub/sub reader, which must go on reading while a gap is filled.
                _ = WorkAsync(publication);
                return default;
            }

            _last = new StreamPosition(publication.Offset, last.Epoch);
        }

        var delivery = DeliverAsync(publication);
        if (!delivery.IsCompletedSuccessfully)
        {
            return new ValueTask(FinishAfterAsync(delivery));
        }

        if (!TryGoIdle())
        {
            _ = WorkAsync(null);
        }

        return default;
    }

    /// <summary>
    /// After a reconnect: read what the channel published since the last delivered position, whether or not a newer
    /// publication shows the gap. The sequencer counts as behind until it has.
    /// </summary>
    public void RequestCatchUp()
    {
        lock (_lock)
        {
            if (_closeRequested)
            {
                return;
            }

            _catchUpWanted = true;
            SetBehind(true);
            if (_working)
            {
                return;
            }

            _working = true;
        }

        _ = WorkAsync(null);
    }

    /// <summary>Stops delivery: nothing more is delivered, a running fill stops trying.</summary>
    public void Close()
    {
        lock (_lock)
        {
            if (_closeRequested)
            {
                return;
            }

            _closeRequested = true;
            _held.Clear();
            SetBehind(false);
        }

        // Outside the lock: a waiting fill's continuation may run right here.
        _closed.Cancel();
    }

    private async Task FinishAfterAsync(ValueTask delivery)
    {
        await delivery;
        if (!TryGoIdle())
        {
            _ = WorkAsync(null);
        }
    }

    /// <summary>Ends this caller's turn unless work is waiting, which the caller then does.</summary>
    private bool TryGoIdle()
    {
        lock (_lock)
        {
            if (_held.Count > 0 || _catchUpWanted)
            {
                return false;
            }

            _working = false;
            return true;
        }
    }

    /// <summary>The worker's loop: <paramref name="first"/>, then catch-ups and held publications until none is left.</summary>
    private async Task WorkAsync(Publication? first)
    {
        var batch = new List<Publication>();
        if (first is not null)
        {
            batch.Add(first);
        }

        try
        {
            while (true)
            {
                var catchUp = false;
                if (batch.Count == 0)
                {
                    lock (_lock)
                    {
                        if (_closeRequested || (_held.Count == 0 && !_catchUpWanted))
                        {
                            _working = false;
                            return;
                        }

                        catchUp = _catchUpWanted;
                        _catchUpWanted = false;
                        batch.AddRange(_held);
                        _held.Clear();
                    }

                    // Pub/sub keeps order, but held publications from before and after a catch-up may interleave.
                    batch.Sort(static (a, b) => a.Offset.CompareTo(b.Offset));
                }

                if (catchUp)
                {
                    await FillAsync(target: null);
                }

                foreach (var publication in batch)
                {
                    await ProcessAsync(publication);
                }

                batch.Clear();
                lock (_lock)
                {
                    if (!_catchUpWanted)
                    {
                        SetBehind(false);
                    }
                }
            }
        }
        catch (Exception ex)
        {
            if (ex is not OperationCanceledException || !_closeRequested)
            {
                // Not expected (the handler's faults are caught where it is called); the next publication starts anew.
                Log.SequencerFailed(_logger, _channel, ex);
            }

            lock (_lock)
            {
                _working = false;
            }
        }
    }

    private async Task ProcessAsync(Publication publication)
    {
        StreamPosition last;
        lock (_lock)
        {
            if (_closeRequested || _last is null)
            {
                return;
            }

            last = _last.Value;
        }

        if (publication.Epoch != last.Epoch)
        {
            if (!_retiredEpochs.Contains(publication.Epoch))
            {
                // A publication of another epoch is Redis's own word that the channel's stream was created again.
                Log.EpochChanged(_logger, _channel, last.Epoch, publication.Epoch);
                await ResetAsync(new StreamPosition(publication.Offset, publication.Epoch));
            }

            return;
        }

        if (publication.Offset <= last.Offset)
        {
            return;
        }

        if (publication.Offset > last.Offset + 1)
        {
            lock (_lock)
            {
                SetBehind(true);
            }

            await FillAsync(target: publication.Offset - 1);
            lock (_lock)
            {
                last = _last!.Value;
            }

            if (publication.Epoch != last.Epoch || publication.Offset <= last.Offset)
            {
                // Filled past it (history had it too), or continuity was reset: nothing more to do with it.
                return;
            }

            if (publication.Offset > last.Offset + 1)
            {
                // History is whole up to a position short of a publication Redis already sent: it lost writes.
                Log.ContinuityLost(_logger, _channel, last.Offset, publication.Offset);
                await ResetAsync(new StreamPosition(publication.Offset, publication.Epoch));
                return;
            }
        }

        lock (_lock)
        {
            _last = new StreamPosition(publication.Offset, last.Epoch);
        }

        await DeliverAsync(publication);
    }

    /// <summary>
    /// Reads history after the last delivered position, in pages, until the channel's current position (a catch-up,
    /// <paramref name="target"/> null) or <paramref name="target"/>, delivering what it reads. Retries while history
    /// cannot be read; resets only when history says what was missed is gone.
    /// </summary>
    private async Task FillAsync(long? target)
    {
        var failures = 0;
        var filled = 0;
        while (true)
        {
            var last = Last!.Value;
            if (target is { } t && last.Offset >= t)
            {
                break;
            }

            HistoryResult history;
            try
            {
                history = await ReadAsync(last);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !_closeRequested)
            {
                failures++;
                if (failures == 1)
                {
                    Log.FillWaiting(_logger, _channel, ex.Message);
                }

                _progress.CountRetry();
                await Task.Delay(_settings.RetryDelay(failures), _settings.Time, _closed.Token);
                continue;
            }

            if (failures > 0)
            {
                Log.FillResumed(_logger, _channel, failures);
                failures = 0;
            }

            if (history.Position.Epoch != last.Epoch)
            {
                Log.EpochChanged(_logger, _channel, last.Epoch, history.Position.Epoch);
                await ResetAsync(history.Position);
                return;
            }

            // Trimmed by size, expired by age, or in a namespace without history: what was missed is gone.
            if (!history.ContinuesFrom(last))
            {
                Log.ContinuityLost(_logger, _channel, last.Offset, history.Position.Offset);
                await ResetAsync(history.Position);
                return;
            }

            var publications = history.Publications;
            foreach (var missed in publications)
            {
                lock (_lock)
                {
                    if (_closeRequested)
                    {
                        return;
                    }

                    _last = new StreamPosition(missed.Offset, last.Epoch);
                }

                await DeliverAsync(missed);
                filled++;
            }

            if (publications.Count < _settings.PageSize || publications[^1].Offset >= history.Position.Offset)
            {
                // A short page ends at the channel's position as it was read; anything newer comes on pub/sub or in
                // the next catch-up.
                break;
            }
        }

        if (filled > 0)
        {
            _progress.CountFilled(filled);
            Log.GapFilled(_logger, _channel, filled);
        }
    }

    private async Task<HistoryResult> ReadAsync(StreamPosition since)
    {
        // A node that comes back reads every channel at once: a few reads at a time keep that from swamping Redis.
        await _progress.ReadSlots.WaitAsync(_closed.Token);
        try
        {
            return await _history(_channel, since, _settings.PageSize, _closed.Token);
        }
        finally
        {
            _progress.ReadSlots.Release();
        }
    }

    private async Task ResetAsync(StreamPosition position)
    {
        lock (_lock)
        {
            if (_closeRequested)
            {
                return;
            }

            if (_last is { } old && old.Epoch != position.Epoch)
            {
                _retiredEpochs.Enqueue(old.Epoch);
                if (_retiredEpochs.Count > 4)
                {
                    _retiredEpochs.Dequeue();
                }
            }

            _last = position;
            Volatile.Write(ref _knownEpoch, position.Epoch);

            // What is held from before the reset is of no use now: subscribers recover from history themselves.
            _held.RemoveAll(p => p.Epoch != position.Epoch || p.Offset <= position.Offset);
        }

        _progress.CountReset();
        try
        {
            await _handler.HandleStreamResetAsync(_channel);
        }
        catch (Exception ex)
        {
            Log.DeliveryFailed(_logger, _channel, ex);
        }
    }

    private async ValueTask DeliverAsync(Publication publication)
    {
        try
        {
            await _handler.HandlePublicationAsync(publication);
        }
        catch (Exception ex)
        {
            // One failed delivery must not stop the channel: the handler owns its subscribers' errors.
            Log.DeliveryFailed(_logger, _channel, ex);
        }
    }

    private void Hold(Publication publication)
    {
        if (_held.Count >= _settings.MaxHeld)
        {
            // Memory stays bounded: history holds these too (where the namespace keeps history), so read them back.
            _held.Clear();
            _catchUpWanted = true;
            SetBehind(true);
            return;
        }

        _held.Add(publication);
    }

    private void SetBehind(bool behind)
    {
        if (_behind != behind && (!behind || !_closeRequested))
        {
            _behind = behind;
            _progress.ChangeBehind(behind ? 1 : -1);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1000, LogLevel.Warning, "Channel '{Channel}' changed epoch from {OldEpoch} to {NewEpoch}: its history was lost; subscribers will recover.")]
        public static partial void EpochChanged(ILogger logger, string channel, string oldEpoch, string newEpoch);

        [LoggerMessage(1001, LogLevel.Information, "Delivered {Count} missed publications on channel '{Channel}' from history.")]
        public static partial void GapFilled(ILogger logger, string channel, int count);

        [LoggerMessage(1002, LogLevel.Warning, "Channel '{Channel}' lost continuity: history no longer holds what came after offset {Offset} (the channel is at {Current}); subscribers will recover.")]
        public static partial void ContinuityLost(ILogger logger, string channel, long offset, long current);

        [LoggerMessage(1003, LogLevel.Warning, "Cannot read the history of channel '{Channel}' yet ({Message}); holding newer publications and trying again.")]
        public static partial void FillWaiting(ILogger logger, string channel, string message);

        [LoggerMessage(1004, LogLevel.Error, "Delivering on channel '{Channel}' failed.")]
        public static partial void DeliveryFailed(ILogger logger, string channel, Exception exception);

        [LoggerMessage(1009, LogLevel.Error, "The sequencer of channel '{Channel}' failed; it starts again with the next publication.")]
        public static partial void SequencerFailed(ILogger logger, string channel, Exception exception);

        [LoggerMessage(1008, LogLevel.Information, "History of channel '{Channel}' readable again after {Failures} failed reads.")]
        public static partial void FillResumed(ILogger logger, string channel, int failures);
    }
}
