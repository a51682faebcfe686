using PushService.Gateway.Auth;
using PushService.Gateway.Configuration;
using PushService.Gateway.Protocol;

namespace PushService.Gateway.Connections;

/// <summary>Why a client may not use a channel, whichever way it came (a WebSocket command, an event stream).</summary>
internal enum ChannelRefusal
{
    None,

    /// <summary>Not a channel name.</summary>
    BadName,

    /// <summary>Its namespace is not configured.</summary>
    UnknownNamespace,

    /// <summary>A user-limited channel (<c>#</c>) of other users.</summary>
    OtherUsers,

    /// <summary>An anonymous client, where the namespace wants a user.</summary>
    Anonymous,
}

/// <summary>
/// The rules every use of a channel by a client goes through, in one place, so that WebSocket commands and event streams
/// cannot drift apart; each caller words the refusal its own protocol's way.
/// </summary>
internal sealed class ChannelAccess(NamespaceResolver namespaces, TokenValidator tokens)
{
    public ChannelRefusal Check(string channel, string user, out NamespaceOptions? ns)
    {
        ns = null;
        if (!ChannelName.IsValid(channel))
        {
            return ChannelRefusal.BadName;
        }

        ns = namespaces.Resolve(channel);
        if (ns is null)
        {
            return ChannelRefusal.UnknownNamespace;
        }

        if (!ChannelName.AllowsUser(channel, user))
        {
            return ChannelRefusal.OtherUsers;
        }

        return tokens.Enabled && user.Length == 0 && !ns.AllowAnonymousSubscribe ? ChannelRefusal.Anonymous : ChannelRefusal.None;
    }
}
