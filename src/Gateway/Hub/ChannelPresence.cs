using Microsoft.Extensions.Logging;
using PushService.Broker;
using PushService.Gateway.Configuration;

namespace PushService.Gateway.Hub;

/// <summary>
/// Presence and join/leave for subscriptions whose namespace wants them: an entry in the channel's presence set while
/// subscribed (refreshed within its TTL), and a join or leave published to the channel's other subscribers. Advisory:
/// a failure is logged and never fails the subscription.
/// </summary>
internal sealed partial class ChannelPresence
{
    private readonly IPresenceStore _store;
    private readonly IBroker _broker;
    private readonly PresenceOptions _options;
    private readonly ILogger _logger;

    public ChannelPresence(IPresenceStore store, IBroker broker, PresenceOptions options, ILogger logger)
    {
        _store = store;
        _broker = broker;
        _options = options;
        _logger = logger;
    }

    /// <summary>Adds the subscriber to presence and tells the channel it joined (or the reverse), where the namespace wants it.</summary>
    public async ValueTask AnnounceAsync(Subscription subscription, bool join)
    {
        var ns = subscription.Namespace;
        if (!ns.Presence && !ns.JoinLeave)
        {
            return;
        }

        var entry = new PresenceEntry(subscription.Connection.Id, subscription.Connection.UserId);
        try
        {
            if (ns.Presence)
            {
                if (join)
                {
                    await _store.AddAsync(subscription.Channel, entry, _options.Ttl);
                }
                else
                {
                    await _store.RemoveAsync(subscription.Channel, entry.Client);
                }
            }

            if (ns.JoinLeave)
            {
                await _broker.PublishJoinLeaveAsync(subscription.Channel, entry, join);
            }
        }
        catch (Exception ex)
        {
            // Presence is advisory and expires by itself; a failed update must not fail the subscription.
            Log.PresenceFailed(_logger, subscription.Channel, ex);
        }
    }

    /// <summary>Refreshes the presence entries of <paramref name="subscriptions"/> in namespaces with presence.</summary>
    public async Task RefreshAsync(IEnumerable<Subscription> subscriptions, CancellationToken cancellationToken)
    {
        foreach (var subscription in subscriptions)
        {
            if (subscription.Namespace.Presence && !cancellationToken.IsCancellationRequested)
            {
                await _store.AddAsync(subscription.Channel, new PresenceEntry(subscription.Connection.Id, subscription.Connection.UserId),
                    _options.Ttl, cancellationToken);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(101, LogLevel.Warning, "Updating presence or join/leave of channel '{Channel}' failed.")]
        public static partial void PresenceFailed(ILogger logger, string channel, Exception exception);
    }
}
