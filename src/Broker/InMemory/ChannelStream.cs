using System.Security.Cryptography;

namespace PushService.Broker.InMemory;

/// <summary>
/// One channel's state in the in-memory broker: epoch, last offset, bounded history and idempotency keys.
/// Every member is called under the stream's own lock, taken by <see cref="InMemoryBroker"/>.
/// </summary>
internal sealed class ChannelStream
{
    private readonly Queue<(Publication Publication, DateTimeOffset ExpiresAt)> _history = new();
    private readonly Dictionary<string, IdempotencyRecord> _idempotency = new(StringComparer.Ordinal);
    private readonly Queue<(string Key, DateTimeOffset ExpiresAt)> _idempotencyExpiry = new();

    public ChannelStream(string channel)
    {
        Channel = channel;
        Epoch = Epochs.New();
    }

    public string Channel { get; }

    public string Epoch { get; }

    public long Offset { get; private set; }

    public DateTimeOffset LastPublishedAt { get; private set; } = DateTimeOffset.MinValue;

    /// <summary>Set under the lock when the sweep dropped this stream; a caller holding it must look it up again.</summary>
    public bool Removed { get; set; }

    public bool IsEmpty => _history.Count == 0 && _idempotency.Count == 0;

    public StreamPosition Position => new(Offset, Epoch);

    public bool TryGetIdempotent(string key, ReadOnlySpan<byte> data, DateTimeOffset now, out PublishResult result)
    {
        Expire(now);
        if (_idempotency.TryGetValue(key, out var record))
        {
            if (!record.DataHash.AsSpan().SequenceEqual(Hash(data)))
            {
                throw new IdempotencyConflictException($"The idempotency key '{key}' was already used on channel '{Channel}' with different data.");
            }

            result = new PublishResult(new StreamPosition(record.Offset, Epoch), Duplicate: true);
            return true;
        }

        result = default;
        return false;
    }

    public Publication Append(ReadOnlyMemory<byte> data, PublishOptions options, TimeSpan idempotencyWindow, DateTimeOffset now)
    {
        Offset++;
        LastPublishedAt = now;
        var publication = new Publication(Channel, Offset, Epoch, data) { TraceParent = options.TraceParent, AcceptedAtTicks = options.AcceptedAtTicks };
        if (options.HistorySize > 0 && options.HistoryTtl > TimeSpan.Zero)
        {
            _history.Enqueue((publication, now + options.HistoryTtl));
            while (_history.Count > options.HistorySize)
            {
                _history.Dequeue();
            }
        }

        if (options.IdempotencyKey is { } key)
        {
            _idempotency[key] = new IdempotencyRecord(Offset, Hash(data.Span));
            _idempotencyExpiry.Enqueue((key, now + idempotencyWindow));
        }

        return publication;
    }

    public List<Publication> Read(HistoryQuery query, DateTimeOffset now)
    {
        Expire(now);
        var result = new List<Publication>();
        if (query.Limit == 0)
        {
            return result;
        }

        if (query.Since is { } since)
        {
            if (!string.Equals(since.Epoch, Epoch, StringComparison.Ordinal))
            {
                return result;
            }

            foreach (var (publication, _) in _history)
            {
                if (publication.Offset > since.Offset)
                {
                    result.Add(publication);
                    if (result.Count == query.Limit)
                    {
                        break;
                    }
                }
            }

            return result;
        }

        var skip = query.Limit is { } limit ? Math.Max(0, _history.Count - limit) : 0;
        foreach (var (publication, _) in _history)
        {
            if (skip-- > 0)
            {
                continue;
            }

            result.Add(publication);
        }

        return result;
    }

    public void Expire(DateTimeOffset now)
    {
        while (_history.TryPeek(out var oldest) && oldest.ExpiresAt <= now)
        {
            _history.Dequeue();
        }

        while (_idempotencyExpiry.TryPeek(out var entry) && entry.ExpiresAt <= now)
        {
            _idempotencyExpiry.Dequeue();
            _idempotency.Remove(entry.Key);
        }
    }

    private static byte[] Hash(ReadOnlySpan<byte> data) => SHA256.HashData(data);

    private readonly record struct IdempotencyRecord(long Offset, byte[] DataHash);
}
