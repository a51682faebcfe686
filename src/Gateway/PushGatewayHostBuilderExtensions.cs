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
    private const string InlineCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>
    /// Runs Kestrel's socket continuations inline instead of hopping to its I/O queue threads. Every push is a small
    /// write followed by a flush; without this each flush is one more thread switch per delivery. Safe here because
    /// nothing the gateway runs on those continuations blocks. <c>PushService:Server:InlineSocketScheduling=false</c>
    /// turns it off.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Also has the runtime complete socket operations on its socket event thread rather than hand each completion to the
    /// thread pool (<c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c>, unless the environment sets it): a REST
    /// request or a client's command then runs on the thread that learnt it arrived, up to its first wait for Redis, which
    /// saves a thread-pool wake-up per request and per command (on a 2-core machine each wake-up costs more than the
    /// work it hands on). Nothing the gateway runs there blocks; a handler's CPU work delays other sockets' completions by
    /// as long. <c>PushService:Server:InlineSocketCompletions=false</c> turns it off.
    /// </para>
    /// <para>
    /// Also puts <see cref="WebSocketConnectionMiddleware"/> in front of every endpoint's HTTP pipeline, so WebSocket
    /// upgrades of <c>/ws</c> run on the bare connection (<c>PushService:Server:DirectWebSockets=false</c> leaves them to the
    /// HTTP pipeline's <c>/ws</c> endpoint), and serves TCP endpoints with <see cref="LeanSocketTransportFactory"/>, whose
    /// connections hold no buffers while idle (<c>PushService:Server:LeanTransport=false</c> keeps Kestrel's socket
    /// transport, to which <c>InlineSocketScheduling</c> applies).
    /// </para>
    /// </remarks>
    public static WebApplicationBuilder UsePushGatewayServer(this WebApplicationBuilder builder)
    {
        var server = PushServiceOptions.From(builder.Configuration).Server;
        builder.WebHost.UseSockets(options => options.UnsafePreferInlineScheduling = server.InlineSocketScheduling);
        if (server.InlineSocketCompletions && Environment.GetEnvironmentVariable(InlineCompletionsVariable) is null)
        {
            // The runtime reads it once, at the process's first asynchronous socket operation, which comes later (Kestrel
            // binds and Redis connects when the host starts). An operator's own setting, 0 included, is left alone.
            Environment.SetEnvironmentVariable(InlineCompletionsVariable, "1");
        }

        if (server.LeanTransport)
        {
            // Registered after Kestrel's: Kestrel tries the last registered transport first.
            builder.Services.AddSingleton<IConnectionListenerFactory, LeanSocketTransportFactory>();
        }

        if (server.DirectWebSockets)
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
