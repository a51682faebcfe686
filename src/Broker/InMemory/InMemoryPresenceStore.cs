using System.Collections.Concurrent;

namespace PushService.Broker.InMemory;

/// <summary>Presence for a single node: entries in memory with their expiry.</summary>
public sealed class InMemoryPresenceStore : IPresenceStore
{
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, (string User, DateTimeOffset ExpiresAt)>> _channels = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;

    /// <summary>Creates the store.</summary>
    public InMemoryPresenceStore(TimeProvider time) => _time = time;

    /// <inheritdoc />
    public ValueTask AddAsync(string channel, PresenceEntry entry, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        _channels.GetOrAdd(channel, static _ => new(StringComparer.Ordinal))[entry.Client] = (entry.User, _time.GetUtcNow() + ttl);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask RemoveAsync(string channel, string client, CancellationToken cancellationToken = default)
    {
        if (_channels.TryGetValue(channel, out var entries))
        {
            entries.TryRemove(client, out _);
            if (entries.IsEmpty)
            {
                _channels.TryRemove(new KeyValuePair<string, ConcurrentDictionary<string, (string, DateTimeOffset)>>(channel, entries));
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<PresenceEntry>> GetAsync(string channel, CancellationToken cancellationToken = default)
    {
        var now = _time.GetUtcNow();
        var result = new List<PresenceEntry>();
        if (_channels.TryGetValue(channel, out var entries))
        {
            foreach (var (client, (user, expiresAt)) in entries)
            {
                if (expiresAt > now)
                {
                    result.Add(new PresenceEntry(client, user));
                }
                else
                {
                    entries.TryRemove(client, out _);
                }
            }
        }

        return ValueTask.FromResult<IReadOnlyList<PresenceEntry>>(result);
    }
}
