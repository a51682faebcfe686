using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;

namespace PushService.Gateway.Configuration;

/// <summary>The one options tree of the gateway, bound from the <c>PushService</c> configuration section.</summary>
public sealed class PushServiceOptions
{
    /// <summary>The configuration section name.</summary>
    public const string SectionName = "PushService";

    /// <summary>This node's id, shown to clients and in <c>/api/v1/info</c>.</summary>
    /// <value>The default value is the host name plus a random suffix.</value>
    public string NodeId { get; set; } = "";

    /// <summary>Client authentication.</summary>
    public AuthOptions Auth { get; set; } = new();

    /// <summary>The REST API.</summary>
    public ApiOptions Api { get; set; } = new();

    /// <summary>Options of channels with no namespace, or whose namespace is not configured.</summary>
    public NamespaceOptions DefaultNamespace { get; set; } = new();

    /// <summary>Options per namespace: the part of a channel name before the first <c>:</c>.</summary>
    public Dictionary<string, NamespaceOptions> Namespaces { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Size, count and time limits.</summary>
    public LimitsOptions Limits { get; set; } = new();

    /// <summary>The WebSocket endpoint.</summary>
    public WebSocketEndpointOptions WebSocket { get; set; } = new();

    /// <summary>How long an idempotency key is remembered per channel.</summary>
    /// <value>The default value is 5 minutes.</value>
    public TimeSpan IdempotencyWindow { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Server-Sent Events (<c>/sse</c>), for clients behind proxies that break WebSockets.</summary>
public sealed class SseOptions
{
    /// <summary>
    /// How long a browser waits before it reconnects a stream that ended (the stream's <c>retry</c> field): after a node
    /// drains, its clients come back to another one this long later.
    /// </summary>
    /// <value>The default value is 1 second.</value>
    public TimeSpan Retry { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The longest a connection token given in the address (<c>?token=</c>, for EventSource, which cannot set headers)
    /// may still be valid for: addresses end up in proxy logs, so one found there must be of no use for long.
    /// </summary>
    /// <value>The default value is 10 minutes.</value>
    public TimeSpan MaxQueryTokenLifetime { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>The web console (<c>/console</c>): the cluster live and a playground for channels.</summary>
public sealed class ConsoleOptions
{
    /// <summary>
    /// Serve the console. It has no powers of its own: every figure and action goes through the REST API, so it shows
    /// nothing without an API key with the <c>admin</c> scope (or, with no keys configured, to loopback callers only).
    /// </summary>
    /// <value>The default value is true.</value>
    public bool Enabled { get; set; } = true;
}

/// <summary>Presence bookkeeping.</summary>
    public PresenceOptions Presence { get; set; } = new();

    /// <summary>Node heartbeats.</summary>
    public ClusterOptions Cluster { get; set; } = new();

    /// <summary>OpenTelemetry metrics and traces.</summary>
    public TelemetryOptions Telemetry { get; set; } = new();

    /// <summary>The web console at <c>/console</c>.</summary>
    public ConsoleOptions Console { get; set; } = new();

    /// <summary>Server-Sent Events at <c>/sse</c>.</summary>
    public SseOptions Sse { get; set; } = new();

    /// <summary>How the node hands its clients to the others when it stops.</summary>
    public DrainOptions Drain { get; set; } = new();

    /// <summary>The server's performance switches, read once when the host is built.</summary>
    public ServerOptions Server { get; set; } = new();

    // The Redis backplane, PushService:Redis, is bound by the broker's own options (RedisBrokerOptions), and only there.

    /// <summary>
    /// The tree as configured, for what the composition decides before the service provider exists (the transport, the
    /// broker, telemetry). Everything else takes <c>IOptions&lt;PushServiceOptions&gt;</c>, bound from the same section.
    /// </summary>
    public static PushServiceOptions From(IConfiguration configuration)
    {
        var options = new PushServiceOptions();
        configuration.GetSection(SectionName).Bind(options);
        return options;
    }
}

/// <summary>
/// The server's performance switches: each is on by default and is named after the part of the framework's I/O path it
/// bypasses for the gateway's own; off, the framework's part serves (README.md's configuration table,
/// docs/benchmarks-history.md for what each is worth). The names they had before are still read when the new ones are
/// not set.
/// </summary>
public sealed class ServerOptions
{
    /// <summary>Serve TCP with the gateway's lean socket transport instead of Kestrel's socket transport; unset is on.</summary>
    public bool? BypassKestrelTransport { get; set; }

    /// <summary>With Kestrel's socket transport, run its continuations inline; off hops to its I/O queue threads.</summary>
    /// <value>The default value is true.</value>
    public bool InlineSocketScheduling { get; set; } = true;

    /// <summary>Take <c>/ws</c> upgrades straight off Kestrel's connection instead of through the HTTP pipeline; unset is on.</summary>
    public bool? BypassHttpPipeline { get; set; }

    /// <summary>The name <see cref="BypassKestrelTransport"/> had before; read only when that is not set.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public bool? LeanTransport { get; set; }

    /// <summary>The name <see cref="BypassHttpPipeline"/> had before; read only when that is not set.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public bool? DirectWebSockets { get; set; }

    // The switches in force. Unset rather than defaulted, so that a former name still counts when the new one is absent:
    // the configuration binder writes a property's current value back even when the configuration has no key for it.
    internal bool BypassesKestrelTransport => BypassKestrelTransport ?? LeanTransport ?? true;

    internal bool BypassesHttpPipeline => BypassHttpPipeline ?? DirectWebSockets ?? true;
}

/// <summary>
/// How the node hands its clients to the others when it stops (SIGTERM): readiness fails and new upgrades are refused at
/// once; after <see cref="Delay"/> the node closes its clients with 1001 in <see cref="Waves"/> waves spread over
/// <see cref="Window"/>, so the surviving nodes take them a slice at a time instead of all in one burst; REST calls are
/// served throughout, and stragglers are aborted <see cref="LimitsOptions.CloseTimeout"/> after the last wave.
/// </summary>
public sealed class DrainOptions
{
    /// <summary>
    /// How long the node goes on serving its clients after readiness turned 503, before the first wave: time for a load
    /// balancer to stop sending it new connections, so the clients it closes reconnect elsewhere. Skipped when no client
    /// is connected.
    /// </summary>
    /// <value>The default value is 2 seconds.</value>
    public TimeSpan Delay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The time over which the waves are spread; 0 closes every client at once.</summary>
    /// <value>The default value is 10 seconds.</value>
    public TimeSpan Window { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How many waves the clients are closed in, evenly spaced over <see cref="Window"/>.</summary>
    /// <value>The default value is 20.</value>
    public int Waves { get; set; } = 20;

    /// <summary>What the host's shutdown timeout allows on top of the drain, for in-flight REST calls and the broker.</summary>
    public static readonly TimeSpan ServerStopAllowance = TimeSpan.FromSeconds(10);

    /// <summary>The longest the drain can take: the delay, the window, then the close timeout for the last wave.</summary>
    public TimeSpan Duration(LimitsOptions limits) => Delay + Window + limits.CloseTimeout;
}

/// <summary>OpenTelemetry metrics and traces.</summary>
public sealed class TelemetryOptions
{
    /// <summary>Collect metrics (served on <c>/metrics</c>) and traces. Off leaves <c>/metrics</c> unmapped.</summary>
    /// <value>The default value is true.</value>
    public bool Enabled { get; set; } = true;
}

/// <summary>Presence bookkeeping.</summary>
public sealed class PresenceOptions
{
    /// <summary>How often a node refreshes the presence entries of its subscribers.</summary>
    /// <value>The default value is 10 seconds.</value>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long an entry lives without a refresh: three refreshes, so one slow refresh never drops anyone.</summary>
    public TimeSpan Ttl => RefreshInterval * 3;
}

/// <summary>Node heartbeats.</summary>
public sealed class ClusterOptions
{
    /// <summary>How often a node reports its connections, subscriptions and channels to the others.</summary>
    /// <value>The default value is 2 seconds.</value>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long a node keeps its backplane subscription to a channel after the channel's last local subscriber left.
    /// Subscribers that come and go (reconnects, page loads, short-lived views) then find it still there: subscribing
    /// costs one backplane round trip instead of three, leaving none. 0 releases it with the last unsubscribe, as the
    /// architecture's invariant 3 states it; a delay is for deployments whose subscribers churn.
    /// </summary>
    /// <value>The default value is 0.</value>
    public TimeSpan UnsubscribeDelay { get; set; } = TimeSpan.Zero;
}

/// <summary>Client authentication.</summary>
public sealed class AuthOptions
{
    /// <summary>Token validation.</summary>
    public JwtOptions Jwt { get; set; } = new();

    /// <summary>Anonymous clients may connect even when a secret is set.</summary>
    /// <value>The default value is false.</value>
    public bool AllowAnonymous { get; set; }
}

/// <summary>JWT validation for connection and subscription tokens.</summary>
public sealed class JwtOptions
{
    /// <summary>HS256 shared secret. Empty (and no public keys or JWKS) means tokens are not checked and every client connects anonymously.</summary>
    /// <value>The default value is empty.</value>
    public string Secret { get; set; } = "";

    /// <summary>Earlier HS256 secrets still accepted while tokens signed with them expire: rotate by adding the new secret as
    /// <see cref="Secret"/> and moving the old one here until its tokens are gone.</summary>
    public List<string> PreviousSecrets { get; set; } = [];

    /// <summary>RS256 public keys in PEM (<c>-----BEGIN PUBLIC KEY-----</c>), for backends that sign with a private key.</summary>
    public List<string> PublicKeys { get; set; } = [];

    /// <summary>A JWKS address (<c>https://issuer/.well-known/jwks.json</c>) whose RS256 keys are fetched, cached and refreshed.</summary>
    /// <value>The default value is empty.</value>
    public string JwksUrl { get; set; } = "";

    /// <summary>How often the JWKS is fetched again (also, at most once a minute, when a token names an unknown key).</summary>
    /// <value>The default value is 10 minutes.</value>
    public TimeSpan JwksRefreshInterval { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>True when any way of checking tokens is configured.</summary>
    public bool Enabled => Secret.Length > 0 || PublicKeys.Count > 0 || JwksUrl.Length > 0;

    /// <summary>Expected <c>aud</c> claim; empty accepts tokens without checking the audience.</summary>
    public string Audience { get; set; } = "";

    /// <summary>Expected <c>iss</c> claim; empty accepts tokens without checking the issuer.</summary>
    public string Issuer { get; set; } = "";

    /// <summary>Tolerated clock difference when checking <c>exp</c> and <c>nbf</c>.</summary>
    /// <value>The default value is 30 seconds.</value>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>The REST API.</summary>
public sealed class ApiOptions
{
    /// <summary>API keys. With none, the REST API answers only loopback callers (protected mode).</summary>
    public List<ApiKeyOptions> Keys { get; set; } = [];
}

/// <summary>One REST API key.</summary>
public sealed class ApiKeyOptions
{
    /// <summary>The secret key, sent as <c>Authorization: Bearer &lt;key&gt;</c>.</summary>
    public string Key { get; set; } = "";

    /// <summary>A name for logs and metrics; never the key itself.</summary>
    public string Name { get; set; } = "";

    /// <summary>What the key may do: <c>publish</c>, <c>read</c>, <c>admin</c> (admin may do everything).</summary>
    public List<string> Scopes { get; set; } = [];
}

/// <summary>Options of one channel namespace.</summary>
public sealed class NamespaceOptions
{
    /// <summary>How many publications each channel's history keeps; 0 keeps none.</summary>
    /// <value>The default value is 100.</value>
    [Range(0, 100_000)]
    public int HistorySize { get; set; } = 100;

    /// <summary>How long each publication stays in history.</summary>
    /// <value>The default value is 5 minutes.</value>
    public TimeSpan HistoryTtl { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Keep and serve presence (who is subscribed).</summary>
    public bool Presence { get; set; }

    /// <summary>Push join and leave events to subscribers.</summary>
    public bool JoinLeave { get; set; }

    /// <summary>Clients may publish over the WebSocket.</summary>
    public bool AllowClientPublish { get; set; }

    /// <summary>Subscribing needs a subscription token.</summary>
    public bool RequireSubscriptionToken { get; set; }

    /// <summary>Anonymous clients may subscribe when a JWT secret is set (with no secret every client is anonymous and may).</summary>
    public bool AllowAnonymousSubscribe { get; set; }

    /// <summary>Clients allowed to subscribe may also read the channel's history with the <c>history</c> command.</summary>
    /// <value>The default value is true.</value>
    public bool AllowClientHistory { get; set; } = true;

    /// <summary>Clients allowed to subscribe may also read the channel's presence with the <c>presence</c> command.</summary>
    /// <value>The default value is true.</value>
    public bool AllowClientPresence { get; set; } = true;

    /// <summary>Whether this namespace keeps history at all.</summary>
    public bool KeepsHistory => HistorySize > 0 && HistoryTtl > TimeSpan.Zero;
}

/// <summary>Size, count and time limits.</summary>
public sealed class LimitsOptions
{
    /// <summary>The largest WebSocket message from a client and the largest REST body, in bytes.</summary>
    /// <value>The default value is 65536.</value>
    public int MaxMessageBytes { get; set; } = 65536;

    /// <summary>Bytes queued to one connection before it is closed with 4500 (slow consumer).</summary>
    /// <value>The default value is 1048576.</value>
    public long ClientQueueMaxBytes { get; set; } = 1024 * 1024;

    /// <summary>Frames queued to one connection before it is closed with 4500 (slow consumer).</summary>
    /// <value>The default value is 10000.</value>
    public int ClientQueueMaxMessages { get; set; } = 10_000;

    /// <summary>Subscriptions per connection.</summary>
    /// <value>The default value is 128.</value>
    public int MaxChannelsPerConnection { get; set; } = 128;

    /// <summary>Channels in one broadcast call.</summary>
    /// <value>The default value is 1000.</value>
    public int MaxBroadcastChannels { get; set; } = 1000;

    /// <summary>Largest <c>limit</c> of one history read.</summary>
    /// <value>The default value is 1000.</value>
    public int MaxHistoryLimit { get; set; } = 1000;

    /// <summary>Open WebSockets on this node; past it, upgrades get 503 with Retry-After. 0 is unlimited.</summary>
    /// <value>The default value is 100000.</value>
    public int MaxConnections { get; set; } = 100_000;

    /// <summary>Connections of one (non-anonymous) user on this node; past it, <c>connect</c> fails and the connection closes with 4003. 0 is unlimited.</summary>
    /// <value>The default value is 100.</value>
    public int MaxConnectionsPerUser { get; set; } = 100;

    /// <summary>WebSocket upgrade attempts per client IP per minute; past it, 429 with Retry-After before any upgrade. 0 is off
    /// (behind a proxy every client has the proxy's address unless forwarded headers are trusted).</summary>
    /// <value>The default value is 0.</value>
    public int ConnectionAttemptsPerIpPerMinute { get; set; }

    /// <summary>Commands one connection may send per second (pongs excepted), with bursts up to twice that; past it, close 4029.</summary>
    /// <value>The default value is 100.</value>
    public int CommandsPerSecond { get; set; } = 100;

    /// <summary>Publishes per second per API key (per caller address in protected mode), bursts up to twice that; past it,
    /// 429 with Retry-After. 0 is unlimited.</summary>
    /// <value>The default value is 10000.</value>
    public int PublishesPerSecondPerKey { get; set; } = 10_000;

    /// <summary>How long a new connection has to send <c>connect</c>.</summary>
    /// <value>The default value is 10 seconds.</value>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a closing connection may take to finish its close handshake before it is aborted.</summary>
    /// <value>The default value is 5 seconds.</value>
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>The WebSocket endpoint.</summary>
public sealed class WebSocketEndpointOptions
{
    /// <summary>
    /// Origins allowed to open a WebSocket (for example <c>https://app.example.com</c>); <c>*</c> allows any.
    /// Empty allows only requests without an Origin header and same-host origins.
    /// </summary>
    public List<string> AllowedOrigins { get; set; } = [];

    /// <summary>Reject requests that carry no Origin header (browsers always send one).</summary>
    /// <value>The default value is false.</value>
    public bool RequireOrigin { get; set; }

    /// <summary>How often the server sends a <c>ping</c> push.</summary>
    /// <value>The default value is 25 seconds.</value>
    public TimeSpan PingInterval { get; set; } = TimeSpan.FromSeconds(25);

    /// <summary>
    /// The longest a connection's pushes are held back to go out together, counted from its last flush (one send loop
    /// per core serves all its connections). A connection flushed less than this ago whose pushes come closer together
    /// than the rest of the window waits for the window's end, so a busy connection costs one send per window instead of
    /// one per push; any other is flushed at once, so sparse traffic sees no added latency. Zero flushes as soon as
    /// anything is queued. Longer windows trade latency for CPU: against zero, 10 ms cut CPU per delivery by two fifths
    /// in the B benchmark and by a third in C, and put the median latency at about the window (docs/benchmarks.md).
    /// </summary>
    /// <value>The default value is 3 milliseconds.</value>
    public TimeSpan WriteCoalescing { get; set; } = TimeSpan.FromMilliseconds(3);

    /// <summary>
    /// Whether each send loop hands the sends of a round (one per connection it flushes) to the kernel in one system
    /// call, through io_uring, rather than one system call per socket. Linux only, and only where the kernel lets the
    /// process use io_uring (container runtimes' default seccomp profiles do not): elsewhere the gateway logs why and
    /// sends socket by socket. Applies to the lean transport (<c>PushService:Server:BypassKestrelTransport</c>).
    /// </summary>
    /// <value>The default value is true.</value>
    public bool BatchSends { get; set; } = true;

    /// <summary>How long after a ping the client has to show it is alive (with <c>pong</c> or any command).</summary>
    /// <value>The default value is 10 seconds.</value>
    public TimeSpan PongTimeout { get; set; } = TimeSpan.FromSeconds(10);
}
