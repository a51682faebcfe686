using System.Diagnostics.CodeAnalysis;

namespace PushService.Gateway.Hub;

/// <summary>
/// A subscriber's subscriptions by channel, safe across threads. Most connections hold one or a handful: the first is a
/// field, and a dictionary is made only for a second. A <see cref="System.Collections.Concurrent.ConcurrentDictionary{TKey, TValue}"/>,
/// even sized for three, was four objects and 190 bytes on every connection (docs/benchmarks-history.md), and these
/// change only on subscribe, unsubscribe and close, never per push.
/// </summary>
internal sealed class SubscriptionSet
{
    // Not a Lock of its own: that would be another object on every connection. Nothing else locks on this one.
    private Subscription? _only;
    private Dictionary<string, Subscription>? _many;

    public int Count
    {
        get
        {
            lock (this)
            {
                return _many?.Count ?? (_only is null ? 0 : 1);
            }
        }
    }

    /// <summary>Sets the subscription to its channel, in place of one there was.</summary>
    public void Set(Subscription subscription)
    {
        lock (this)
        {
            if (_many is not null)
            {
                _many[subscription.Channel] = subscription;
            }
            else if (_only is null || _only.Channel == subscription.Channel)
            {
                _only = subscription;
            }
            else
            {
                _many = new Dictionary<string, Subscription>(4, StringComparer.Ordinal)
                {
                    [_only.Channel] = _only,
                    [subscription.Channel] = subscription,
                };
                _only = null;
            }
        }
    }

    public bool Contains(string channel)
    {
        lock (this)
        {
            return _many?.ContainsKey(channel) ?? _only?.Channel == channel;
        }
    }

    /// <summary>Removes the subscription to <paramref name="channel"/>, when there is one.</summary>
    public bool TryRemove(string channel, [MaybeNullWhen(false)] out Subscription subscription)
    {
        lock (this)
        {
            if (_many is not null)
            {
                return _many.Remove(channel, out subscription);
            }

            subscription = _only?.Channel == channel ? _only : null;
            _only = subscription is null ? _only : null;
            return subscription is not null;
        }
    }

    /// <summary>Removes <paramref name="subscription"/>, only if it is still the one for its channel.</summary>
    public bool TryRemove(Subscription subscription)
    {
        lock (this)
        {
            if (_many is not null)
            {
                return _many.TryGetValue(subscription.Channel, out var current) && current == subscription && _many.Remove(subscription.Channel);
            }

            if (_only != subscription)
            {
                return false;
            }

            _only = null;
            return true;
        }
    }

    /// <summary>The subscriptions now, as a copy.</summary>
    public Subscription[] Snapshot()
    {
        lock (this)
        {
            return _many is not null ? [.. _many.Values] : _only is null ? [] : [_only];
        }
    }

    /// <summary>Removes every subscription and returns them.</summary>
    public Subscription[] TakeAll()
    {
        lock (this)
        {
            var all = Snapshot();
            _many?.Clear();
            _only = null;
            return all;
        }
    }
}
