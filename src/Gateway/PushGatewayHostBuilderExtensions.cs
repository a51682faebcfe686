using Microsoft.AspNetCore.Hosting;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Server settings the gateway's hot path wants.</summary>
public static class PushGatewayHostBuilderExtensions
{
    /// <summary>
    /// Runs Kestrel's socket continuations inline instead of hopping to its I/O queue threads. Every push is a small
    /// write followed by a flush; without this each flush is one more thread switch per delivery. Safe here because
    /// nothing the gateway runs on those continuations blocks. <c>PushService:Server:InlineSocketScheduling=false</c>
    /// turns it off.
    /// </summary>
    public static WebApplicationBuilder UsePushGatewayServer(this WebApplicationBuilder builder)
    {
        var inline = builder.Configuration.GetValue("PushService:Server:InlineSocketScheduling", defaultValue: true);
        builder.WebHost.UseSockets(options => options.UnsafePreferInlineScheduling = inline);
        return builder;
    }
}
