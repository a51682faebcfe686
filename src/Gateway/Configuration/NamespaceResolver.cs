using Microsoft.Extensions.Options;

namespace PushService.Gateway.Configuration;

/// <summary>Finds the options of a channel's namespace.</summary>
public sealed class NamespaceResolver
{
    private readonly PushServiceOptions _options;

    /// <summary>Creates the resolver.</summary>
    public NamespaceResolver(IOptions<PushServiceOptions> options) => _options = options.Value;

    /// <summary>
    /// The options of <paramref name="channel"/>'s namespace, or null when the channel names a namespace that is not configured.
    /// </summary>
    public NamespaceOptions? Resolve(string channel)
    {
        var colon = channel.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            return _options.DefaultNamespace;
        }

        return _options.Namespaces.GetValueOrDefault(channel[..colon]);
    }

    /// <summary>The namespace part of a channel name ("" for the default namespace).</summary>
    public static string NamespaceOf(string channel)
    {
        var colon = channel.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? "" : channel[..colon];
    }
}
