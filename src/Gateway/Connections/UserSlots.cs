using System.Collections.Concurrent;

namespace PushService.Gateway.Connections;

/// <summary>
/// How many connections each user holds on this node, for <c>Limits:MaxConnectionsPerUser</c>: taken when a connection's
/// token names a user, given back when that connection leaves the node.
/// </summary>
internal sealed class UserSlots
{
    private readonly ConcurrentDictionary<string, int> _connections = new(StringComparer.Ordinal);

    /// <summary>Counts one more connection of <paramref name="user"/>, unless it already has <paramref name="max"/> (0: no limit).</summary>
    public bool TryTake(string user, int max)
    {
        while (true)
        {
            var current = _connections.GetOrAdd(user, 0);
            if (max > 0 && current >= max)
            {
                return false;
            }

            if (_connections.TryUpdate(user, current + 1, current))
            {
                return true;
            }
        }
    }

    /// <summary>Gives one of <paramref name="user"/>'s connections back; the user's entry goes with its last.</summary>
    public void Release(string user)
    {
        while (_connections.TryGetValue(user, out var current))
        {
            if (current <= 1 ? _connections.TryRemove(new KeyValuePair<string, int>(user, current)) : _connections.TryUpdate(user, current - 1, current))
            {
                return;
            }
        }
    }
}
