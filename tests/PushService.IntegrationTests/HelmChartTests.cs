using System.Reflection;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using PushService.Broker.Redis;
using PushService.Gateway.Configuration;
using PushService.IntegrationTests.Infrastructure;
using PushService.Testing;

namespace PushService.IntegrationTests;

/// <summary>
/// The Helm chart rendered (as <c>helm template</c> would) with its defaults, with every option on, with the bundled
/// Redis and with operator-managed Secrets; every object validated against the Kubernetes schemas (the Prometheus
/// Operator's for the ServiceMonitor) and the values against values.schema.json; bad values refused with a message.
/// </summary>
public sealed class HelmChartTests
{
    public static TheoryData<string> ValueSets => ["defaults", "all.yaml", "standalone.yaml", "existing-secrets.yaml"];

    private static Task<HelmChart.Rendering> RenderAsync(string valueSet) => valueSet == "defaults"
        ? HelmChart.RenderAsync(sets: ["redis.configuration=redis:6379"])
        : HelmChart.RenderAsync([HelmChart.ValuesFile(valueSet)]);

    [Theory]
    [MemberData(nameof(ValueSets))]
    public async Task Renders_AndEveryObjectAndTheValuesAreValid(string valueSet)
    {
        var rendering = await RenderAsync(valueSet);
        Assert.True(rendering.Succeeded, rendering.Render.ToString());
        var validation = await HelmChart.ValidateAsync(rendering);
        Assert.True(validation.ExitCode == 0, validation.ToString());
        Assert.Contains("values: valid", validation.Output, StringComparison.Ordinal);
        Assert.Equal(rendering.Objects.Count, validation.Output.Split('\n').Count(l => l.EndsWith(": valid", StringComparison.Ordinal) && !l.StartsWith("values", StringComparison.Ordinal)));
        Assert.Contains("Clients connect to", rendering.Notes, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheAlertRulesAndTheDashboard_ShipAsTheyAreInDeploy()
    {
        var rendering = await RenderAsync("all.yaml");
        Assert.True(rendering.Succeeded, rendering.Render.ToString());

        // The PrometheusRule holds every rule of deploy/prometheus/alerts.yaml, expression for expression.
        var expected = MonitoringFiles.AlertRules().ToList();
        Assert.True(expected.Count >= 10, $"{expected.Count} rules in alerts.yaml");
        var rule = rendering.Single("PrometheusRule");
        Assert.Equal("prometheus", (string?)rule["metadata"]!["labels"]!["release"]);
        var rendered = rule["spec"]!["groups"]!.AsArray().SelectMany(g => g!["rules"]!.AsArray())
            .Select(r => ((string)r!["alert"]!, ((string)r["expr"]!).Trim())).ToList();
        Assert.Equal(expected, rendered);

        // The dashboard ConfigMap carries deploy/grafana/pushservice.json unchanged, labelled for Grafana's sidecar.
        var dashboard = rendering.OfKind("ConfigMap").Single(c => ((string)c["metadata"]!["name"]!).EndsWith("-dashboard", StringComparison.Ordinal));
        Assert.Equal("1", (string?)dashboard["metadata"]!["labels"]!["grafana_dashboard"]);
        Assert.Equal("monitoring", (string?)dashboard["metadata"]!["namespace"]);
        var json = File.ReadAllText(MonitoringFiles.DashboardPath);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(json), JsonNode.Parse((string)dashboard["data"]!["pushservice.json"]!)));
    }

    [Fact]
    public async Task Defaults_GiveADrainingDeploymentWithProbesAndNoRootAndTheRuntimeSettings()
    {
        var rendering = await HelmChart.RenderAsync(sets: ["redis.configuration=redis:6379"]);
        Assert.True(rendering.Succeeded, rendering.Render.ToString());
        Assert.Equal(["ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"], rendering.Objects.Select(o => (string)o["kind"]!).Order());

        var deployment = rendering.Single("Deployment");
        Assert.Equal(3, (int)deployment["spec"]!["replicas"]!);
        Assert.Equal(0, (int)deployment["spec"]!["strategy"]!["rollingUpdate"]!["maxUnavailable"]!);
        var pod = new RenderedPod(rendering, "push-pushservice-0");
        Assert.Equal(5, pod.PreStopSleepSeconds);
        Assert.Equal(5 + 2 + 10 + 5 + 15, pod.TerminationGracePeriodSeconds);
        Assert.Equal("/readyz", pod.ReadinessPath);
        Assert.Equal(("/healthz", "/healthz"), ((string)pod.Container["livenessProbe"]!["httpGet"]!["path"]!, (string)pod.Container["startupProbe"]!["httpGet"]!["path"]!));
        Assert.Equal(["--urls=http://+:8080"], pod.Arguments);

        var environment = pod.Environment;
        Assert.Equal("push-pushservice-0", environment["PushService__NodeId"]);
        Assert.Equal("redis:6379", environment["PushService__Redis__Configuration"]);
        Assert.Equal("1", environment["DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"]);
        Assert.Equal("0x400000", environment["DOTNET_GCgen0size"]);
        Assert.Equal("0.00:00:02", environment["PushService__Drain__Delay"]);
        Assert.Equal("0.00:00:10", environment["PushService__Drain__Window"]);
        Assert.Equal("20", environment["PushService__Drain__Waves"]);

        var security = pod.Container["securityContext"]!;
        Assert.True((bool)security["readOnlyRootFilesystem"]!);
        Assert.False((bool)security["allowPrivilegeEscalation"]!);
        Assert.True((bool)deployment["spec"]!["template"]!["spec"]!["securityContext"]!["runAsNonRoot"]!);
        Assert.Equal(2, deployment["spec"]!["template"]!["spec"]!["topologySpreadConstraints"]!.AsArray().Count);
    }

    /// <summary>The environment the chart renders from <c>config</c> binds to the options the gateway validates.</summary>
    [Fact]
    public async Task EveryOption_SetInValues_ReachesTheGatewaysOptions()
    {
        var rendering = await HelmChart.RenderAsync([HelmChart.ValuesFile("all.yaml")]);
        Assert.True(rendering.Succeeded, rendering.Render.ToString());
        var pod = new RenderedPod(rendering, "push-gw-0", secrets: true);
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(pod.Environment.Where(e => e.Key.StartsWith("PushService__", StringComparison.Ordinal))
                .Select(e => KeyValuePair.Create(e.Key.Replace("__", ":", StringComparison.Ordinal), (string?)e.Value)))
            .Build();
        var options = configuration.GetSection(PushServiceOptions.SectionName).Get<PushServiceOptions>()!;
        var redis = configuration.GetSection("PushService:Redis").Get<RedisBrokerOptions>()!;

        Assert.Equal("push-gw-0", options.NodeId);
        Assert.Equal(50_000, options.Limits.MaxConnections);
        Assert.Equal(2_097_152, options.Limits.ClientQueueMaxBytes);
        Assert.Equal(TimeSpan.FromSeconds(5), options.Limits.CloseTimeout);
        Assert.Equal(["https://app.example.com", "https://admin.example.com"], options.WebSocket.AllowedOrigins);
        Assert.Equal(TimeSpan.FromMilliseconds(5), options.WebSocket.WriteCoalescing);
        Assert.True(options.Namespaces["chat"].Presence);
        Assert.True(options.Namespaces["prices"].RequireSubscriptionToken);
        Assert.Equal(TimeSpan.FromSeconds(30), options.Namespaces["prices"].HistoryTtl);
        Assert.Equal(TimeSpan.FromSeconds(3), options.Drain.Delay);
        Assert.Equal(TimeSpan.FromSeconds(30), options.Drain.Window);
        Assert.Equal(30, options.Drain.Waves);
        Assert.Equal("0123456789abcdef0123456789abcdef-current", options.Auth.Jwt.Secret);
        Assert.Equal(["0123456789abcdef0123456789abcdef-previous"], options.Auth.Jwt.PreviousSecrets);
        Assert.Equal(["backend", "ops"], options.Api.Keys.Select(k => k.Name));
        Assert.Equal(["publish", "read"], options.Api.Keys[0].Scopes);
        Assert.Equal("push", redis.KeyPrefix);
        Assert.Equal(1, redis.MinReplicas);
        Assert.Equal("sentinel-0:26379,sentinel-1:26379,sentinel-2:26379,serviceName=pushservice,password=redis-secret-password", redis.Configuration);
        Assert.Equal("0", pod.Environment["DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"]);
        Assert.False(pod.Environment.ContainsKey("DOTNET_GCgen0size"), "gen0SizeBytes 0 leaves the runtime's own gen-0 budget");
        Assert.Equal(10 + 3 + 30 + 5 + 15, pod.TerminationGracePeriodSeconds);

        Assert.DoesNotContain(rendering.Objects, o => (string?)o["kind"] == "Deployment" && o["spec"]!["replicas"] is not null);
        var ingress = rendering.Single("Ingress");
        Assert.Equal("7200", (string?)ingress["metadata"]!["annotations"]!["nginx.ingress.kubernetes.io/proxy-read-timeout"]);
        Assert.Equal("off", (string?)ingress["metadata"]!["annotations"]!["nginx.ingress.kubernetes.io/proxy-buffering"]);
        Assert.Equal("letsencrypt", (string?)ingress["metadata"]!["annotations"]!["cert-manager.io/cluster-issuer"]);
        var hpa = rendering.Single("HorizontalPodAutoscaler");
        Assert.Contains(hpa["spec"]!["metrics"]!.AsArray(), m => (string?)m!["pods"]?["metric"]?["name"] == "pushservice_connections");
        Assert.Equal("/metrics", (string?)rendering.Single("ServiceMonitor")["spec"]!["endpoints"]![0]!["path"]);
    }

    /// <summary>
    /// values.schema.json's <c>config</c> names every option of the gateway's tree (and nothing else), bar the ones the
    /// chart sets from its own values, so a new option cannot be forgotten and a typo is refused at install.
    /// </summary>
    [Fact]
    public void TheValuesSchema_CoversTheWholeOptionTree()
    {
        var schema = JsonNode.Parse(File.ReadAllText(Path.Combine(HelmChart.ChartDirectory, "values.schema.json")))!;
        var config = schema["properties"]!["config"]!;
        string[] setByTheChart = ["NodeId", "Drain", "Api", "Redis.Configuration", "Redis.MinReplicas", "Auth.Jwt.Secret", "Auth.Jwt.PreviousSecrets", "Limits.CloseTimeout"];
        var options = OptionPaths(typeof(PushServiceOptions), "").Concat(OptionPaths(typeof(RedisBrokerOptions), "Redis."))
            .Where(p => !setByTheChart.Any(s => p == s || p.StartsWith(s + ".", StringComparison.Ordinal)))
            .Where(p => !p.StartsWith("Namespaces.", StringComparison.Ordinal))
            .Distinct().Order().ToList();
        var inSchema = SchemaPaths(config, "").Order().ToList();
        Assert.Equal(options, inSchema);
    }

    public static TheoryData<string, string> BadValues => new()
    {
        { "{}", "Set exactly one of redis.configuration" },
        { "redis: {configuration: 'r:6379', standalone: {enabled: true}}", "Set exactly one of redis.configuration" },
        { "redis: {sentinel: {enabled: true}}", "redis.sentinel.endpoints" },
        { "redis: {configuration: 'r:6379', password: p}\nauth: {existingSecret: mine}", "give the Redis password as redis.existingSecret" },
        { "redis: {configuration: 'r:6379'}\nmetrics: {serviceMonitor: {enabled: true}}\nconfig: {Telemetry: {Enabled: false}}", "needs /metrics" },
        { "redis: {configuration: 'r:6379'}\nmetrics: {prometheusRule: {enabled: true}}\nconfig: {Telemetry: {Enabled: false}}", "needs /metrics" },
    };

    [Theory]
    [MemberData(nameof(BadValues))]
    public async Task ValuesTheTemplatesCannotUse_FailTheRender_WithAMessage(string values, string message)
    {
        var rendering = await HelmChart.RenderAsync([await WriteValuesAsync(values)]);
        Assert.False(rendering.Succeeded);
        Assert.Contains(message, rendering.Render.Error, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> ValuesTheSchemaRefuses => new()
    {
        { "drain: {waves: 0}", "values.drain.waves: must be >= 1" },
        { "config: {Drain: {Window: '00:00:10'}}", "(Drain)" },
        { "config: {Limits: {CloseTimeout: '00:00:05'}}", "(CloseTimeout)" },
        { "config: {Limits: {MaxConections: 5}}", "(MaxConections)" },
        { "config: {WebSocket: {PingInterval: '25'}}", "values.config.WebSocket.PingInterval: must match pattern" },
        { "apiKeys: [{name: b, key: short, scopes: [publish]}]", "values.apiKeys.0.key: must NOT have fewer than 16 characters" },
        { "apiKeys: [{name: b, key: '0123456789abcdef', scopes: [everything]}]", "values.apiKeys.0.scopes.0: must be equal to one of the allowed values" },
        { "auth: {jwtSecret: short}", "values.auth.jwtSecret" },
        { "replicas: 3", "(replicas)" },
        { "redis: {configuration: 'r:6379,password=secret'}", "values.redis.configuration: must NOT be valid" },
    };

    [Theory]
    [MemberData(nameof(ValuesTheSchemaRefuses))]
    public async Task ValuesOutsideTheSchema_AreRefused_NamingTheKey(string values, string message)
    {
        var file = await WriteValuesAsync("redis: {configuration: 'r:6379'}\n");
        var rendering = await HelmChart.RenderAsync([file, await WriteValuesAsync(values)]);
        Assert.True(rendering.Succeeded, rendering.Render.ToString());
        var validation = await HelmChart.ValidateValuesAsync(rendering);
        Assert.Equal(1, validation.ExitCode);
        Assert.Contains(message, validation.Error, StringComparison.Ordinal);
    }

    private static async Task<string> WriteValuesAsync(string yaml)
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("pushservice-values-").FullName, "values.yaml");
        await File.WriteAllTextAsync(file, yaml);
        return file;
    }

    /// <summary>Bindable leaf options of a type, as dotted paths (dictionaries and lists are leaves).</summary>
    private static IEnumerable<string> OptionPaths(Type type, string prefix)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
        {
            var path = prefix + property.Name;
            var propertyType = property.PropertyType;
            if (propertyType.IsClass && propertyType != typeof(string) && !propertyType.IsGenericType)
            {
                foreach (var child in OptionPaths(propertyType, path + "."))
                {
                    yield return child;
                }
            }
            else
            {
                yield return path;
            }
        }
    }

    private static IEnumerable<string> SchemaPaths(JsonNode node, string prefix)
    {
        foreach (var (name, child) in node["properties"]!.AsObject())
        {
            var path = prefix + name;
            if (child!["properties"] is not null && name != "Namespaces")
            {
                foreach (var nested in SchemaPaths(child, path + "."))
                {
                    yield return nested;
                }
            }
            else
            {
                yield return path;
            }
        }
    }
}
