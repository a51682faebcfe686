using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using PushService.IntegrationTests.Infrastructure;
using PushService.Testing;

namespace PushService.IntegrationTests;

/// <summary>
/// Metrics against what really happened: two gateway processes on a real Redis get a known amount of traffic; each
/// node's <c>/metrics</c> then reports exactly those connections, publications, deliveries, close codes and
/// rejections, a real Prometheus scraping both returns the same totals over PromQL with the alert rules loaded, and
/// every expression of the Grafana dashboard and the alert rules names a metric the nodes export and runs in Prometheus.
/// </summary>
public sealed partial class MetricsTests
{
    private const string Channel = "telemetry";
    private const string Key = "metrics-test-key-0123456789";
    private const int PublishedOnA = 4;
    private const int PublishedOnB = 6;
    private const int Published = PublishedOnA + PublishedOnB;

    private static readonly string AlertRules = MonitoringFiles.AlertRulesPath;
    private static readonly string Dashboard = MonitoringFiles.DashboardPath;

    [Fact]
    public async Task AfterKnownTraffic_EachNodeAndPrometheus_ReportExactlyWhatHappened()
    {
        await using var redis = await RedisServer.StartAsync();
        var settings = new Dictionary<string, string>
        {
            ["PushService:Api:Keys:0:Key"] = Key,
            ["PushService:Api:Keys:0:Scopes:0"] = "admin",
        };
        await using var a = await GatewayProcess.StartAsync("metrics-a", redis.Configuration, settings);
        await using var b = await GatewayProcess.StartAsync("metrics-b", redis.Configuration, settings);

        // Three subscribers on A, two on B; then a client on B that subscribes before connecting (refused: 4001).
        var onA = await Subscribers.OpenAsync(a.WebSocketUri, Channel, 3);
        var onB = await Subscribers.OpenAsync(b.WebSocketUri, Channel, 2);
        await using (var early = await TestClient.OpenAsync(b.WebSocketUri))
        {
            await early.SendRawAsync("{\"op\":\"subscribe\",\"id\":1,\"channel\":\"telemetry\"}");
            Assert.Equal(4001, (await early.ClosedAsync()).Code);
        }

        // Publications through REST on both nodes, and one with a wrong API key on B (refused: 401).
        (string Epoch, long Offset) last = default;
        for (var i = 0; i < Published; i++)
        {
            var node = i < PublishedOnA ? a : b;
            using var response = await PublishAsync(node, Key, $"{{\"n\":{i}}}");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = await response.Content.ReadFromJsonAsync<JsonElement>();
            last = (body.GetProperty("epoch").GetString()!, body.GetProperty("offset").GetInt64());
        }

        using (var refused = await PublishAsync(b, "not-the-key-000000000000", "1"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        // Without a collector nothing is traced, so no response claims a trace, even for a caller that sent one.
        using (var untraced = new HttpRequestMessage(HttpMethod.Get, "/api/v1/info"))
        {
            untraced.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Key);
            untraced.Headers.Add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
            using var info = await a.Http.SendAsync(untraced);
            Assert.Equal(HttpStatusCode.OK, info.StatusCode);
            Assert.False(info.Headers.Contains("traceresponse"));
        }

        foreach (var client in onA.Concat(onB))
        {
            await client.MessagesAsync(Channel, Published);
        }

        // A subscribe with 'since' that recovers everything (a recovery), on A.
        var recovering = await TestClient.OpenAsync(a.WebSocketUri);
        await recovering.ResultAsync(new { op = "connect" });
        await recovering.ResultAsync(new { op = "subscribe", channel = Channel, since = new { epoch = last.Epoch, offset = last.Offset - 2 } });
        await recovering.DisposeAsync();

        // Closes: one of A's clients leaves normally (1000 by the client); one of B's sends a binary frame (4000 by the server).
        await onA[0].DisposeAsync();
        await onB[0].SendRawAsync([1, 2, 3], WebSocketMessageType.Binary);
        Assert.Equal(4000, (await onB[0].ClosedAsync()).Code);

        // Counters only go up: wait until each has reached what happened, then it must be exactly that.
        var expectA = new Expected(Opened: 4, Open: 2, Subscriptions: 2, Published: PublishedOnA, Delivered: 3 * Published,
            Closed: new() { [("1000", "client")] = 2 }, Rejected: [], Recovered: 1);
        var expectB = new Expected(Opened: 3, Open: 1, Subscriptions: 1, Published: PublishedOnB, Delivered: 2 * Published,
            Closed: new() { [("4001", "server")] = 1, [("4000", "server")] = 1 },
            Rejected: new() { [("auth", "websocket")] = 1, [("auth", "api")] = 1 }, Recovered: 0);
        var scrapeA = await SettledAsync(a, expectA);
        var scrapeB = await SettledAsync(b, expectB);
        expectA.AssertExactly(scrapeA);
        expectB.AssertExactly(scrapeB);

        // Fan-out latency is measured on the publishing node and on the other one, for publications of both.
        foreach (var scrape in new[] { scrapeA, scrapeB })
        {
            var samples = scrape.Sum("pushservice_fanout_duration_seconds_count");
            Assert.InRange(samples, 1, 3 * Published);
            Assert.InRange(scrape.Sum("pushservice_fanout_duration_seconds_sum") / samples, 0, 5);
            Assert.True(scrape.Sum("pushservice_sent_bytes_total") > 0, "bytes out");
            Assert.Equal(1, scrape.Sum("pushservice_broker_connected"));
        }

        Assert.Equal(PublishedOnA, scrapeA.Sum("pushservice_broker_publish_duration_seconds_count"));
        Assert.Equal(PublishedOnB, scrapeB.Sum("pushservice_broker_publish_duration_seconds_count"));

        // A real Prometheus scraping both nodes, with the alert rules loaded, reads the same totals.
        await using var prometheus = await PrometheusServer.StartAsync([a.BaseAddress, b.BaseAddress], [AlertRules]);
        await Poll.UntilAsync(async () => await prometheus.ScalarAsync("count(up{job=\"pushservice\"} == 1)") == 2, TimeSpan.FromSeconds(30),
            () => $"Prometheus did not scrape both nodes:\n{prometheus.Output}");
        Assert.Equal(Published, await prometheus.ScalarAsync("sum(pushservice_publications_total)"));
        Assert.Equal(5 * Published, await prometheus.ScalarAsync("sum(pushservice_deliveries_total)"));
        Assert.Equal(7, await prometheus.ScalarAsync("sum(pushservice_connections_opened_total)"));
        Assert.Equal(3, await prometheus.ScalarAsync("sum(pushservice_connections)"));
        Assert.Equal(new Dictionary<string, double> { ["1000"] = 2, ["4000"] = 1, ["4001"] = 1 },
            await prometheus.ByLabelAsync("sum by (code) (pushservice_connections_closed_total)", "code"));
        Assert.Equal(new Dictionary<string, double> { [a.BaseAddress.Authority] = 3 * Published, [b.BaseAddress.Authority] = 2 * Published },
            await prometheus.ByLabelAsync("sum by (instance) (pushservice_deliveries_total)", "instance"));

        var rules = await prometheus.Http.GetFromJsonAsync<JsonElement>("/api/v1/rules");
        var loaded = rules.GetProperty("data").GetProperty("groups").EnumerateArray()
            .SelectMany(g => g.GetProperty("rules").EnumerateArray()).Select(r => r.GetProperty("name").GetString()!).ToHashSet();
        Assert.Equal(AlertNames().ToHashSet(), loaded);
        Assert.All(rules.GetProperty("data").GetProperty("groups").EnumerateArray().SelectMany(g => g.GetProperty("rules").EnumerateArray()),
            r => Assert.Equal("ok", r.GetProperty("health").GetString()));

        // Every expression of the dashboard and of the alert rules names only metrics the nodes export, and runs.
        var exported = scrapeA.Names.Union(scrapeB.Names).Append("up").ToHashSet(StringComparer.Ordinal);
        var expressions = DashboardExpressions().Concat(AlertExpressions()).ToList();
        Assert.True(expressions.Count > 40, $"{expressions.Count} expressions");
        foreach (var expression in expressions)
        {
            foreach (var metric in MetricNames(expression))
            {
                Assert.True(exported.Contains(metric), $"'{metric}' in '{expression}' is not exported by the nodes");
            }

            var runnable = expression.Replace("$__rate_interval", "1m", StringComparison.Ordinal).Replace("$instance", ".*", StringComparison.Ordinal);
            await prometheus.QueryAsync(runnable);
        }

        foreach (var client in onA.Skip(1).Concat(onB.Skip(1)))
        {
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task TheAlertRules_PassPromtool_AndItsUnitTestsOfWhenEachFires()
    {
        var check = await Command.RunAsync("promtool", ["check", "rules", AlertRules]);
        Assert.True(check.ExitCode == 0, check.ToString());
        Assert.Contains($"SUCCESS: {AlertNames().Count()} rules found", check.Output + check.Error, StringComparison.Ordinal);

        var test = await Command.RunAsync("promtool", ["test", "rules", "alerts.test.yaml"], Path.GetDirectoryName(AlertRules));
        Assert.True(test.ExitCode == 0, test.ToString());
        Assert.Contains("SUCCESS", test.Output + test.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void TheDashboard_ParsesAndEveryPanelHasAQueryAndADescription()
    {
        using var dashboard = JsonDocument.Parse(File.ReadAllText(Dashboard));
        var panels = dashboard.RootElement.GetProperty("panels").EnumerateArray().Where(p => p.GetProperty("type").GetString() != "row").ToList();
        Assert.True(panels.Count >= 20, $"{panels.Count} panels");
        Assert.All(panels, p => Assert.NotEmpty(p.GetProperty("targets").EnumerateArray()));
        Assert.Equal(panels.Count, panels.Select(p => p.GetProperty("id").GetInt32()).Distinct().Count());
        var names = dashboard.RootElement.GetProperty("templating").GetProperty("list").EnumerateArray().Select(v => v.GetProperty("name").GetString());
        Assert.Equal(["datasource", "instance"], names);
    }

    private sealed record Expected(int Opened, int Open, int Subscriptions, int Published, int Delivered,
        Dictionary<(string Code, string Initiator), int> Closed, Dictionary<(string Reason, string Source), int> Rejected, int Recovered)
    {
        public bool Reached(MetricsScrape scrape) =>
            scrape.Sum("pushservice_connections_opened_total") >= Opened
            && scrape.Sum("pushservice_deliveries_total") >= Delivered
            && scrape.Sum("pushservice_connections_closed_total") >= Closed.Values.Sum()
            && scrape.Sum("pushservice_rejections_total") >= Rejected.Values.Sum()
            && scrape.Sum("pushservice_connections") <= Open;

        public void AssertExactly(MetricsScrape scrape)
        {
            Assert.Equal(Opened, scrape.Sum("pushservice_connections_opened_total"));
            Assert.Equal(Open, scrape.Sum("pushservice_connections"));
            Assert.Equal(Subscriptions, scrape.Sum("pushservice_subscriptions"));
            Assert.Equal(Published, scrape.Sum("pushservice_publications_total", ("source", "api")));
            Assert.Equal(0, scrape.Sum("pushservice_publications_total", ("source", "client")));
            Assert.Equal(Delivered, scrape.Sum("pushservice_deliveries_total"));
            Assert.Equal(Closed.Values.Sum(), scrape.Sum("pushservice_connections_closed_total"));
            foreach (var ((code, initiator), count) in Closed)
            {
                Assert.Equal(count, scrape.Sum("pushservice_connections_closed_total", ("code", code), ("initiator", initiator)));
            }

            Assert.Equal(Rejected.Values.Sum(), scrape.Sum("pushservice_rejections_total"));
            foreach (var ((reason, source), count) in Rejected)
            {
                Assert.Equal(count, scrape.Sum("pushservice_rejections_total", ("reason", reason), ("source", source)));
            }

            Assert.Equal(Recovered, scrape.Sum("pushservice_recoveries_total", ("recovered", "true")));
            Assert.Equal(0, scrape.Sum("pushservice_slow_consumers_total"));
            Assert.Equal(1, scrape.Sum("pushservice_channels"));
        }
    }

    private static async Task<MetricsScrape> SettledAsync(GatewayProcess node, Expected expected)
    {
        MetricsScrape? last = null;
        await Poll.UntilAsync(async () => expected.Reached(last = await MetricsScrape.ReadAsync(node.Http)), TimeSpan.FromSeconds(15),
            () => $"{node.NodeId} did not reach {expected}:\n{last?.Text}");

        // Settled: anything still to be counted (a close finishing) has had its chance; the exact checks read this one.
        await Task.Delay(300);
        return await MetricsScrape.ReadAsync(node.Http);
    }


    private static async Task<HttpResponseMessage> PublishAsync(GatewayProcess node, string key, string data)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/channels/{Channel}/messages")
        {
            Content = new StringContent($"{{\"data\":{data}}}", Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return await node.Http.SendAsync(request);
    }

    private static IEnumerable<string> AlertNames() => MonitoringFiles.AlertRules().Select(r => r.Alert);

    private static IEnumerable<string> AlertExpressions() => MonitoringFiles.AlertRules().Select(r => r.Expression);

    private static IEnumerable<string> DashboardExpressions() => MonitoringFiles.DashboardExpressions();

    /// <summary>The metric names an expression selects: identifiers followed by a selector, a range or the end, not functions or labels.</summary>
    private static IEnumerable<string> MetricNames(string expression)
    {
        var withoutGroupings = ByClause().Replace(LabelMatchers().Replace(expression, "{}"), "");
        return MetricName().Matches(withoutGroupings).Select(m => m.Groups[1].Value)
            .Where(n => !PromQlWords.Contains(n)).Distinct();
    }

    private static readonly HashSet<string> PromQlWords = new(StringComparer.Ordinal)
    {
        "sum", "min", "max", "avg", "count", "rate", "increase", "histogram_quantile", "by", "and", "or", "unless", "without", "on", "ignoring",
    };

    [GeneratedRegex("""\{[^}]*\}""")]
    private static partial Regex LabelMatchers();

    [GeneratedRegex("""\b(?:by|without|on|ignoring)\s*\([^)]*\)""")]
    private static partial Regex ByClause();

    [GeneratedRegex("""\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[|\s*[=<>!]|\s*\)|\s*$|\s+and\b|\s+or\b)""")]
    private static partial Regex MetricName();
}
