using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PushService.Gateway.Configuration;
using PushService.Gateway.Connections;
using PushService.Gateway.Transport;
using PushService.Gateway.Transport.Sockets;

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
    /// <remarks>
    /// <para>
    /// The runtime's own switch that the gateway's figures were measured with, completing socket operations on its
    /// socket event thread (<c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c>), is process-wide and belongs to the
    /// environment: the container image and the Helm chart set it, and docs/deploy.md says so for bare hosts. The send
    /// scheduler logs at start-up when it is not set.
    /// </para>
    /// <para>
    /// Also puts <see cref="WebSocketConnectionMiddleware"/> in front of every endpoint's HTTP pipeline, so WebSocket
    /// upgrades of <c>/ws</c> run on the bare connection (<c>PushService:Server:BypassHttpPipeline=false</c> leaves them to the
    /// HTTP pipeline's <c>/ws</c> endpoint), and serves TCP endpoints with <see cref="LeanSocketTransportFactory"/>, whose
    /// connections hold no buffers while idle (<c>PushService:Server:BypassKestrelTransport=false</c> keeps Kestrel's socket
    /// transport, to which <c>InlineSocketScheduling</c> applies).
    /// </para>
    /// </remarks>
    public static WebApplicationBuilder UsePushGatewayServer(this WebApplicationBuilder builder)
    {
        var server = PushServiceOptions.From(builder.Configuration).Server;
        builder.WebHost.UseSockets(options => options.UnsafePreferInlineScheduling = server.InlineSocketScheduling);
        if (server.BypassesKestrelTransport)
        {
            // Registered after Kestrel's: Kestrel tries the last registered transport first.
            builder.Services.AddSingleton<IConnectionListenerFactory, LeanSocketTransportFactory>();
        }

        if (server.BypassesHttpPipeline)
        {
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.ConfigureEndpointDefaults(listen => listen.Use(next =>
            {
                var services = listen.ApplicationServices;
                var middleware = new WebSocketConnectionMiddleware(next, services.GetRequiredService<WebSocketEndpoint>(),
                    services.GetRequiredService<ILogger<WebSocketConnectionMiddleware>>());
                return middleware.OnConnectionAsync;
            })));
        }

        return builder;
    }
}
