using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
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
    /// Also puts <see cref="WebSocketConnectionMiddleware"/> in front of every endpoint's HTTP pipeline, so WebSocket
    /// upgrades of <c>/ws</c> run on the bare connection (<c>PushService:Server:DirectWebSockets=false</c> leaves them to the
    /// HTTP pipeline's <c>/ws</c> endpoint), and serves TCP endpoints with <see cref="LeanSocketTransportFactory"/>, whose
    /// connections hold no buffers while idle (<c>PushService:Server:LeanTransport=false</c> keeps Kestrel's socket
    /// transport, to which <c>InlineSocketScheduling</c> applies).
    /// </remarks>
    public static WebApplicationBuilder UsePushGatewayServer(this WebApplicationBuilder builder)
    {
        var inline = builder.Configuration.GetValue("PushService:Server:InlineSocketScheduling", defaultValue: true);
        builder.WebHost.UseSockets(options => options.UnsafePreferInlineScheduling = inline);
        if (builder.Configuration.GetValue("PushService:Server:LeanTransport", defaultValue: true))
        {
            // Registered after Kestrel's: Kestrel tries the last registered transport first.
            builder.Services.AddSingleton<IConnectionListenerFactory, LeanSocketTransportFactory>();
        }

        if (builder.Configuration.GetValue("PushService:Server:DirectWebSockets", defaultValue: true))
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
