using System.Diagnostics.Metrics;
using PushService.Gateway.Protocol;

namespace PushService.Gateway.Telemetry;

/// <summary>
/// The gateway's instruments, all on the one <see cref="PushTelemetry.Name"/> meter, named by OpenTelemetry's conventions
/// (dotted lower-case names, UCUM units; the Prometheus exporter turns <c>pushservice.fanout.duration</c> in seconds into
/// <c>pushservice_fanout_duration_seconds</c>). docs/operations.md lists every one and what healthy looks like.
/// </summary>
/// <remarks>
/// The hot path pays one counter update per fan-out (deliveries are counted per publication with the number of local
/// subscribers, never per subscriber) and one histogram sample and one counter update per socket write. Everything that
/// is a state rather than an event (channels, queued frames, the backplane) is observed when metrics are collected,
/// by the hub (<see cref="Hub.LocalHub"/>).
/// </remarks>
public sealed class PushMetrics
{
    /// <summary>Buckets for latencies in seconds: 0.25 ms to 10 s, dense where a healthy node's fan-out sits.</summary>
    private static readonly double[] LatencyBuckets =
        [0.00025, 0.0005, 0.001, 0.002, 0.0035, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private static readonly KeyValuePair<string, object?> FromApi = new("source", "api");
    private static readonly KeyValuePair<string, object?> FromClient = new("source", "client");
    private static readonly KeyValuePair<string, object?> FromWebSocket = new("source", "websocket");

    private readonly Counter<long> _published;
    private readonly Counter<long> _delivered;
    private readonly Counter<long> _sentBytes;
    private readonly UpDownCounter<long> _connections;
    private readonly Counter<long> _opened;
    private readonly Counter<long> _closed;
    private readonly UpDownCounter<long> _subscriptions;
    private long _slowConsumers;
    private readonly Counter<long> _rejections;
    private readonly Counter<long> _recoveries;
    private readonly Histogram<double> _fanOut;
    private readonly Histogram<double> _brokerPublish;

    /// <summary>Creates the instruments on the meter from <paramref name="meterFactory"/>.</summary>
    public PushMetrics(IMeterFactory meterFactory)
    {
        Meter = meterFactory.Create(PushTelemetry.Name);
        _published = Meter.CreateCounter<long>("pushservice.publications", "{publication}",
            "Publications accepted by this node, by source: api (REST) or client (a WebSocket publish).");
        _delivered = Meter.CreateCounter<long>("pushservice.deliveries", "{delivery}",
            "Message pushes queued to local subscribers (one per subscriber per publication).");
        _sentBytes = Meter.CreateCounter<long>("pushservice.sent", "By",
            "WebSocket payload bytes written to client sockets (pushes, replies and control frames).");
        _connections = Meter.CreateUpDownCounter<long>("pushservice.connections", "{connection}", "Open WebSocket connections.");
        _opened = Meter.CreateCounter<long>("pushservice.connections.opened", "{connection}", "WebSocket connections accepted.");
        _closed = Meter.CreateCounter<long>("pushservice.connections.closed", "{connection}",
            "WebSocket connections ended, by close code and by who ended them: server, client or network (no close frame: 1006).");
        _subscriptions = Meter.CreateUpDownCounter<long>("pushservice.subscriptions", "{subscription}", "Channel subscriptions of local connections.");
        // Observed rather than added to, so the series exists at 0 from the start: rate() and the alert on it have
        // something to read before the first slow consumer.
        Meter.CreateObservableCounter("pushservice.slow_consumers", () => Interlocked.Read(ref _slowConsumers), "{connection}",
            "Connections closed with 4500 because their outbound queue overflowed.");
        _rejections = Meter.CreateCounter<long>("pushservice.rejections", "{rejection}",
            "Requests and commands refused, by reason (auth, permission, limit, rate, origin) and source (websocket, api).");
        _recoveries = Meter.CreateCounter<long>("pushservice.recoveries", "{recovery}",
            "Subscribes with 'since', by whether everything missed was recovered.");
        _fanOut = Meter.CreateHistogram<double>("pushservice.fanout.duration", "s",
            "From the publishing node accepting a publication to its push being written to a subscriber's socket, on every node; "
            + "one sample per socket write, for the oldest publication in it.",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        _brokerPublish = Meter.CreateHistogram<double>("pushservice.broker.publish.duration", "s",
            "How long the backplane took to store and announce a publication, as the publishing node saw it.",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
    }

    /// <summary>The meter, for instruments observed elsewhere (the hub's gauges).</summary>
    public Meter Meter { get; }

    /// <summary>The same events as running totals the node can read itself (the web console's rates).</summary>
    public ActivityCounters Activity { get; } = new();

    /// <summary>A publication was accepted from the REST API (<paramref name="fromApi"/>) or a client.</summary>
    public void Published(bool fromApi)
    {
        _published.Add(1, fromApi ? FromApi : FromClient);
        Activity.Published();
    }

    /// <summary>A publication was queued to <paramref name="subscribers"/> local subscribers.</summary>
    public void Delivered(int subscribers)
    {
        _delivered.Add(subscribers);
        Activity.Delivered(subscribers);
    }

    /// <summary><paramref name="bytes"/> went into a client's socket.</summary>
    public void Sent(long bytes) => _sentBytes.Add(bytes);

    /// <summary>A push written at <paramref name="writtenAtTicks"/> was accepted at <paramref name="acceptedAtTicks"/> (UTC ticks).</summary>
    public void FannedOut(long acceptedAtTicks, long writtenAtTicks)
    {
        // Another node's clock may run a little ahead: a negative span is clock skew, not a latency.
        var elapsed = writtenAtTicks - acceptedAtTicks;
        _fanOut.Record(elapsed > 0 ? elapsed / (double)TimeSpan.TicksPerSecond : 0);
    }

    /// <summary>The broker answered a publish after <paramref name="elapsed"/>; <paramref name="error"/> names its failure.</summary>
    public void BrokerPublished(TimeSpan elapsed, string? error)
    {
        if (error is null)
        {
            _brokerPublish.Record(elapsed.TotalSeconds);
        }
        else
        {
            _brokerPublish.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("error.type", error));
        }
    }

    /// <summary>A connection opened.</summary>
    public void ConnectionOpened()
    {
        _connections.Add(1);
        _opened.Add(1);
    }

    /// <summary>A connection ended with <paramref name="code"/>, closed by <paramref name="initiator"/>.</summary>
    public void ConnectionClosed(int code, string initiator)
    {
        _connections.Add(-1);
        _closed.Add(1, new KeyValuePair<string, object?>("code", code), new KeyValuePair<string, object?>("initiator", initiator));
        Activity.Closed(code);
    }

    /// <summary>A subscription was added.</summary>
    public void SubscriptionAdded() => _subscriptions.Add(1);

    /// <summary>A subscription was removed.</summary>
    public void SubscriptionRemoved() => _subscriptions.Add(-1);

    /// <summary>A connection's queue overflowed and it is being closed with 4500.</summary>
    public void SlowConsumer() => Interlocked.Increment(ref _slowConsumers);

    /// <summary>Something was refused for <paramref name="reason"/> (one of <see cref="RejectionReasons"/>).</summary>
    public void Rejected(string reason, bool fromApi) =>
        _rejections.Add(1, new KeyValuePair<string, object?>("reason", reason), fromApi ? FromApi : FromWebSocket);

    /// <summary>A subscribe with 'since' was answered.</summary>
    public void Recovered(bool complete) => _recoveries.Add(1, new KeyValuePair<string, object?>("recovered", complete));
}

/// <summary>The values of the <c>reason</c> tag of <c>pushservice.rejections</c>.</summary>
public static class RejectionReasons
{
    /// <summary>A missing, invalid or expired token or API key.</summary>
    public const string Auth = "auth";

    /// <summary>A valid caller that may not do this (a namespace rule, a user-limited channel, a missing scope).</summary>
    public const string Permission = "permission";

    /// <summary>A configured limit: connections per node or user, subscriptions per connection, message size.</summary>
    public const string Limit = "limit";

    /// <summary>A rate limit: publishes per key, connection attempts per IP, commands per connection.</summary>
    public const string Rate = "rate";

    /// <summary>A WebSocket from an origin that is not allowed.</summary>
    public const string Origin = "origin";

    /// <summary>The reason a command's error reply counts as, or null for an error that refuses nothing (a bad request, an outage).</summary>
    public static string? ForErrorCode(string code) => code switch
    {
        ErrorCodes.Unauthorized => Auth,
        ErrorCodes.PermissionDenied => Permission,
        ErrorCodes.LimitExceeded => Limit,
        _ => null,
    };

    /// <summary>The reason a REST answer counts as, or null for one that refuses nothing.</summary>
    public static string? ForStatusCode(int? status) => status switch
    {
        401 => Auth,
        403 => Permission,
        413 => Limit,
        _ => null,
    };
}
