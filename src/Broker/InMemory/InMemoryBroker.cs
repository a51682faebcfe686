using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace PushService.Broker.InMemory;

/// <summary>
/// The single-node broker: history, offsets and idempotency in this process's memory. The embedded default
/// when no Redis is configured, and the broker of unit tests. Publications are handed to the node through
/// one dispatch queue, so a publisher never waits for fan-out and delivery order equals offset order.
/// </summary>
public sealed partial class InMemoryBroker : IBroker, IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, ChannelStream> _streams = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _subscribed = new(StringComparer.Ordinal);
    private readonly Channel<DispatchItem> _dispatch = Channel.CreateUnbounded<DispatchItem>(new UnboundedChannelOptions { SingleReader = true });
    private readonly InMemoryBrokerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<InMemoryBroker> _logger;
    private readonly CancellationTokenSource _stopping = new();
    private Task? _dispatchLoop;
    private ITimer? _sweepTimer;
    private int _disposed;

    /// <summary>Creates the broker.</summary>
    public InMemoryBroker(IOptions<InMemoryBrokerOptions> options, TimeProvider time, ILogger<InMemoryBroker> logger)
    {
        _options = options.Value;
        _time = time;
        _logger = logger;
    }

    /// <inheritdoc />
    public bool IsAvailable => true;

    /// <inheritdoc />
    public bool IsCaughtUp => true;

    /// <inheritdoc />
    public BrokerStatistics Statistics => new() { Connected = true };

    /// <summary>How many channels have state (position, history or idempotency keys) in memory.</summary>
    public int StreamCount => _streams.Count;

    /// <inheritdoc />
    public Task StartAsync(IBrokerEventHandler handler, CancellationToken cancellationToken)
    {
        if (_dispatchLoop is not null)
        {
            throw new InvalidOperationException("The broker was already started.");
        }

        _dispatchLoop = Task.Run(() => DispatchLoopAsync(handler), CancellationToken.None);
        _sweepTimer = _time.CreateTimer(_ => Sweep(), null, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
        Log.Started(_logger);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<PublishResult> PublishAsync(string channel, ReadOnlyMemory<byte> data, PublishOptions options, CancellationToken cancellationToken = default)
    {
        var now = _time.GetUtcNow();
        var stream = LockedStream(channel);
        try
        {
            if (options.IdempotencyKey is { } key && stream.TryGetIdempotent(key, data.Span, now, out var earlier))
            {
                return ValueTask.FromResult(earlier);
            }

            var publication = stream.Append(data, options, _options.IdempotencyWindow, now);

            // Written under the stream's lock so the dispatch order is the offset order.
            _dispatch.Writer.TryWrite(new DispatchItem(publication.Channel, publication, null, false));
            return ValueTask.FromResult(new PublishResult(stream.Position, Duplicate: false));
        }
        finally
        {
            Monitor.Exit(stream);
        }
    }

    /// <inheritdoc />
    public ValueTask<StreamPosition> SubscribeAsync(string channel, CancellationToken cancellationToken = default)
    {
        _subscribed.TryAdd(channel, 0);
        var stream = LockedStream(channel);
        try
        {
            return ValueTask.FromResult(stream.Position);
        }
        finally
        {
            Monitor.Exit(stream);
        }
    }

    /// <inheritdoc />
    public ValueTask UnsubscribeAsync(string channel, CancellationToken cancellationToken = default)
    {
        _subscribed.TryRemove(channel, out _);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<HistoryResult> HistoryAsync(string channel, HistoryQuery query, CancellationToken cancellationToken = default)
    {
        if (query.Limit < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(query), "The limit must not be negative.");
        }

        var now = _time.GetUtcNow();
        var stream = LockedStream(channel);
        try
        {
            var publications = stream.Read(query, now);
            return ValueTask.FromResult(new HistoryResult(stream.Position, publications));
        }
        finally
        {
            Monitor.Exit(stream);
        }
    }

    /// <summary>The channel's stream with its lock held, never one the sweep has just dropped.</summary>
    private ChannelStream LockedStream(string channel)
    {
        while (true)
        {
            var stream = _streams.GetOrAdd(channel, static c => new ChannelStream(c));
            Monitor.Enter(stream);
            if (!stream.Removed)
            {
                return stream;
            }

            Monitor.Exit(stream);
        }
    }

    /// <inheritdoc />
    public ValueTask PublishJoinLeaveAsync(string channel, PresenceEntry entry, bool join, CancellationToken cancellationToken = default)
    {
        _dispatch.Writer.TryWrite(new DispatchItem(channel, null, entry, join));
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _dispatch.Writer.TryComplete();
        await _stopping.CancelAsync();
        if (_sweepTimer is not null)
        {
            await _sweepTimer.DisposeAsync();
        }

        if (_dispatchLoop is not null)
        {
            await _dispatchLoop;
        }

        _stopping.Dispose();
    }

    private async Task DispatchLoopAsync(IBrokerEventHandler handler)
    {
        var reader = _dispatch.Reader;
        try
        {
            while (await reader.WaitToReadAsync(_stopping.Token))
            {
                while (reader.TryRead(out var item))
                {
                    if (!_subscribed.ContainsKey(item.Channel))
                    {
                        continue;
                    }

                    try
                    {
                        if (item.Publication is { } publication)
                        {
                            await handler.HandlePublicationAsync(publication);
                        }
                        else
                        {
                            await handler.HandleJoinLeaveAsync(item.Channel, item.Entry!, item.Join);
                        }
                    }
                    catch (Exception ex)
                    {
                        // One failing delivery must not stop delivery of everything else.
                        Log.HandlerFailed(_logger, item.Channel, ex);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    /// <summary>Drops channels whose history and idempotency keys are gone and whose position outlived its time to live.</summary>
    internal void Sweep()
    {
        var now = _time.GetUtcNow();
        foreach (var (channel, stream) in _streams)
        {
            lock (stream)
            {
                stream.Expire(now);
                if (stream.IsEmpty && stream.LastPublishedAt + _options.PositionTtl <= now && !_subscribed.ContainsKey(channel))
                {
                    stream.Removed = true;
                    _streams.TryRemove(new KeyValuePair<string, ChannelStream>(channel, stream));
                }
            }
        }
    }

    private readonly record struct DispatchItem(string Channel, Publication? Publication, PresenceEntry? Entry, bool Join);

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "In-memory broker started: single node, history and offsets live in this process only.")]
        public static partial void Started(ILogger logger);

        [LoggerMessage(2, LogLevel.Error, "Delivering a publication on channel '{Channel}' failed.")]
        public static partial void HandlerFailed(ILogger logger, string channel, Exception exception);
    }
}
