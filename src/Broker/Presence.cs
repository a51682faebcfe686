namespace PushService.Broker;

/// <summary>One client present in a channel.</summary>
/// <param name="Client">The connection's client id.</param>
/// <param name="User">The connection's user id; empty for anonymous.</param>
public sealed record PresenceEntry(string Client, string User);

/// <summary>
/// Who is subscribed to a channel, across every node. Each node adds its own subscribers with a time to live and
/// refreshes them, so a node that dies takes its entries with it when they expire.
/// </summary>
public interface IPresenceStore
{
    /// <summary>Adds or refreshes an entry for <paramref name="ttl"/>.</summary>
    ValueTask AddAsync(string channel, PresenceEntry entry, TimeSpan ttl, CancellationToken cancellationToken = default);

    /// <summary>Removes an entry.</summary>
    ValueTask RemoveAsync(string channel, string client, CancellationToken cancellationToken = default);

    /// <summary>The entries that have not expired.</summary>
    ValueTask<IReadOnlyList<PresenceEntry>> GetAsync(string channel, CancellationToken cancellationToken = default);
}
