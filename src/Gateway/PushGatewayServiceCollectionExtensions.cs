using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using PushService.Broker.InMemory;
using PushService.Broker.Redis;
using PushService.Gateway;
using PushService.Gateway.Api;
using PushService.Gateway.Auth;
using PushService.Gateway.Cluster;
using PushService.Gateway.Configuration;
using PushService.Gateway.Connections;
using PushService.Gateway.Protocol;
using PushService.Gateway.Draining;
using PushService.Gateway.Hub;
using PushService.Gateway.Publishing;
using PushService.Gateway.Telemetry;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the push gateway.</summary>
public static class PushGatewayServiceCollectionExtensions
{
    /// <summary>
    /// Adds the gateway: options bound from the <c>PushService</c> section and validated at start-up, the hub, the
    /// command handler, the REST API, health, draining and telemetry. With no <c>PushService:Redis:Configuration</c>
    /// the in-memory broker serves a single node.
    /// </summary>
    public static PushGatewayBuilder AddPushGateway(this IServiceCollection services, IConfiguration configuration)
    {
        var section = configuration.GetSection(PushServiceOptions.SectionName);
        var configured = PushServiceOptions.From(configuration);
        services.AddOptions<PushServiceOptions>().Bind(section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<PushServiceOptions>, PushServiceOptionsValidator>();

        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<NodeIdentity>();
        services.AddSingleton<NamespaceResolver>();
        services.AddSingleton<TokenValidator>();
        services.AddSingleton<JwksKeySource>();
        services.AddHostedService(sp => sp.GetRequiredService<JwksKeySource>());
        services.AddHttpClient(JwksKeySource.HttpClientName).AddStandardResilienceHandler();
        services.AddPushRateLimits(configured.Limits.PublishesPerSecondPerKey);
        services.AddSingleton<PushMetrics>();
        services.AddSingleton<LocalHub>();
        services.AddSingleton<ConnectionRegistry>();
        services.AddSingleton<Publisher>();
        services.AddSingleton<CommandHandler>();
        services.AddSingleton<WebSocketEndpoint>();
        services.AddSingleton<SseEndpoint>();
        services.AddSingleton<SendScheduler>();
        services.AddSingleton<ApiKeyAuthenticator>();
        services.AddSingleton<DrainState>();
        services.AddHostedService<BrokerHostedService>();
        services.AddHostedService<DrainingService>();
        services.AddOptions<HostOptions>().PostConfigure<IOptions<PushServiceOptions>>((host, push) =>
        {
            // The shutdown timeout bounds the whole stop: the drain, then Kestrel finishing in-flight requests.
            var needed = push.Value.Drain.Duration(push.Value.Limits) + DrainOptions.ServerStopAllowance;
            if (host.ShutdownTimeout < needed)
            {
                host.ShutdownTimeout = needed;
            }
        });
        services.AddSingleton<ClusterService>();
        services.AddHostedService(sp => sp.GetRequiredService<ClusterService>());
        services.AddHostedService<ConnectionHeartbeat>();
        services.AddHostedService<IdleChannelReleaser>();
        services.AddProblemDetails();
        services.AddPushOpenApi();
        services.AddMetrics();

        var builder = new PushGatewayBuilder(services, configuration);
        if (string.IsNullOrWhiteSpace(section.GetSection("Redis").Get<RedisBrokerOptions>()?.Configuration))
        {
            builder.AddInMemoryBroker();
        }
        else
        {
            builder.AddRedisBroker();
        }

        if (configured.Telemetry.Enabled)
        {
            services.AddPushTelemetry(configuration);
        }

        return builder;
    }

    /// <summary>
    /// OpenTelemetry: the gateway's meter plus the runtime's, ASP.NET Core's and HttpClient's, served on <c>/metrics</c>;
    /// traces of the gateway's source, ASP.NET Core, HttpClient and StackExchange.Redis. Both also go out over OTLP when
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set; sampling follows <c>OTEL_TRACES_SAMPLER</c> and
    /// <c>OTEL_TRACES_SAMPLER_ARG</c> (parent-based, always on by default).
    /// </summary>
    private static void AddPushTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        var otlp = HasOtlpEndpoint(configuration);
        var telemetry = services.AddOpenTelemetry()
            .ConfigureResource(r => r
                .AddService("pushservice-gateway", serviceVersion: typeof(PushTelemetry).Assembly.GetName().Version?.ToString(), autoGenerateServiceInstanceId: false)
                .AddDetector(provider => new NodeResourceDetector(provider.GetRequiredService<NodeIdentity>())))
            .WithMetrics(metrics =>
            {
                // ASP.NET Core's request durations, Kestrel's connections and unhandled exceptions, by meter name.
                // AddAspNetCoreInstrumentation would also enable the routing and rate limiting meters (a route match and a
                // lease's start, end and duration on every publish request) and put its own middleware in front of every
                // request: +6% CPU per delivery in regime B (docs/benchmarks-history.md, "Telemetry"), for nothing the
                // request metrics miss.
                metrics.AddMeter(PushTelemetry.Name, "System.Runtime", "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel",
                    "Microsoft.AspNetCore.Diagnostics", "System.Net.Http").AddPrometheusExporter();

                // Every tag set here is small (close codes, reasons, routes); the default of 2,000 series per metric
                // preallocates about 140 KB per metric on the large object heap.
                metrics.AddView(_ => new MetricStreamConfiguration { CardinalityLimit = MetricCardinalityLimit });
                if (otlp)
                {
                    metrics.AddOtlpExporter();
                }
            });

        // What a tracer provider records, wherever one is built: here when there is a collector to send spans to (without
        // one, recording a span per request would be work for nothing), or by a host that adds its own exporter.
        services.ConfigureOpenTelemetryTracerProvider(tracing => tracing
            .AddSource(PushTelemetry.Name)
            .AddAspNetCoreInstrumentation(aspNetCore => aspNetCore.Filter = context => IsTraced(context.Request.Path))
            .AddHttpClientInstrumentation()
            .AddRedisInstrumentation()
            .ConfigureRedisInstrumentation((provider, redis) =>
            {
                // The broker's multiplexer is made when the broker starts; its commands (history, presence, the control
                // bus) are traced from then on. The broker's own RESP connections are covered by the publish span.
                provider.GetService<RedisConnection>()?.GetAsync().ContinueWith(
                    connected => redis.AddConnection(connected.Result), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            }));
        if (otlp)
        {
            telemetry.WithTracing(tracing => tracing.AddOtlpExporter());

            // Logs go to the collector too, with their scopes (node, connection, channel) as attributes and the node as
            // the resource's service.instance.id.
            telemetry.WithLogging(logging => logging.AddOtlpExporter(), options => options.IncludeScopes = true);
        }
    }

    /// <summary>
    /// Requests worth a span: not the probes and scrapes, and not <c>/ws</c>, whose request lasts as long as the socket
    /// (its publishes are traced as they happen).
    /// </summary>
    private static bool IsTraced(PathString path) =>
        !path.StartsWithSegments("/metrics") && !path.StartsWithSegments("/healthz") && !path.StartsWithSegments("/readyz")
        && !path.StartsWithSegments(WebSocketEndpoint.Path);

    /// <summary>
    /// Rate limits from <c>PushService:Limits</c>: publishes per second per API key. Rejections are 429 problem details with
    /// <c>Retry-After</c>. (WebSocket upgrades per client IP are limited by <see cref="WebSocketEndpoint"/>, which both
    /// accept paths go through.)
    /// </summary>
    private static IServiceCollection AddPushRateLimits(this IServiceCollection services, int publishesPerSecond)
    {
        return services.AddRateLimiter(limiter =>
        {
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            limiter.OnRejected = async (context, cancellationToken) =>
            {
                context.HttpContext.RequestServices.GetRequiredService<PushMetrics>().Rejected(RejectionReasons.Rate, fromApi: true);
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(1);
                await ApiProblems.RetryLater(StatusCodes.Status429TooManyRequests, "Too many requests", retryAfter,
                    "A PushService:Limits rate limit was reached; retry after the Retry-After delay.").ExecuteAsync(context.HttpContext);
            };
            limiter.AddPolicy(PushRateLimits.Publish, context => publishesPerSecond <= 0
                ? RateLimitPartition.GetNoLimiter("all")
                : RateLimitPartition.GetTokenBucketLimiter(PushRateLimits.CallerKey(context), _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = publishesPerSecond * 2,
                    TokensPerPeriod = publishesPerSecond,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                }));
        });
    }

    /// <summary>The most series one metric keeps.</summary>
    private const int MetricCardinalityLimit = 500;

    /// <summary>Uses the single-node in-memory broker, with <c>PushService:IdempotencyWindow</c>.</summary>
    public static PushGatewayBuilder AddInMemoryBroker(this PushGatewayBuilder builder)
    {
        builder.Services.AddOptions<InMemoryBrokerOptions>()
            .Configure<IOptions<PushServiceOptions>>((broker, push) => broker.IdempotencyWindow = push.Value.IdempotencyWindow);
        builder.Services.AddInMemoryPushBroker();
        return builder;
    }

    /// <summary>
    /// Uses the Redis backplane, configured from <c>PushService:Redis</c> (see <see cref="RedisBrokerOptions"/>) and
    /// <c>PushService:IdempotencyWindow</c>; <paramref name="configure"/> runs last.
    /// </summary>
    public static PushGatewayBuilder AddRedisBroker(this PushGatewayBuilder builder, Action<RedisBrokerOptions>? configure = null)
    {
        builder.Services.AddOptions<RedisBrokerOptions>()
            .Configure<IOptions<PushServiceOptions>>((redis, push) => redis.IdempotencyWindow = push.Value.IdempotencyWindow);
        builder.Services.AddRedisPushBroker(builder.Configuration.GetSection($"{PushServiceOptions.SectionName}:Redis"), configure);
        return builder;
    }

    // The OTLP exporters are added only when an endpoint is configured, so a node without a collector never retries one.
    private static bool HasOtlpEndpoint(IConfiguration configuration) =>
        !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
}
