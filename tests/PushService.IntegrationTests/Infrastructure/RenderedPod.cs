using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>
/// What the kubelet would give the gateway container of the chart's Deployment in a pod of the given name: its
/// arguments, its environment (literal values, the pod name from the downward API, ConfigMap and Secret references as
/// rendered, <c>$(VAR)</c> expanded), its preStop sleep, grace period and readiness probe.
/// </summary>
internal sealed partial class RenderedPod
{
    private readonly HelmChart.Rendering _rendering;

    public RenderedPod(HelmChart.Rendering rendering, string podName, bool secrets = true)
    {
        _rendering = rendering;
        PodName = podName;
        var spec = rendering.Single("Deployment")["spec"]!["template"]!["spec"]!;
        Container = spec["containers"]!.AsArray().Single(c => (string?)c!["name"] == "gateway")!.AsObject();
        TerminationGracePeriodSeconds = (int)spec["terminationGracePeriodSeconds"]!;
        Environment = BuildEnvironment(secrets);
    }

    public string PodName { get; }

    public JsonObject Container { get; }

    public int TerminationGracePeriodSeconds { get; }

    public IReadOnlyList<string> Arguments => Container["args"]?.AsArray().Select(a => (string)a!).ToList() ?? [];

    public IReadOnlyDictionary<string, string> Environment { get; }

    public int PreStopSleepSeconds
    {
        get
        {
            var command = Container["lifecycle"]!["preStop"]!["exec"]!["command"]!.AsArray().Select(c => (string)c!).ToList();
            Assert.Equal("sleep", command[0]);
            return int.Parse(command[1], System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    public string ReadinessPath => (string)Container["readinessProbe"]!["httpGet"]!["path"]!;

    public int ReadinessPeriodSeconds => (int)Container["readinessProbe"]!["periodSeconds"]!;

    public int ReadinessFailureThreshold => (int)Container["readinessProbe"]!["failureThreshold"]!;

    private Dictionary<string, string> BuildEnvironment(bool secrets)
    {
        // envFrom first: explicit env entries win, as in Kubernetes.
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var source in Container["envFrom"]?.AsArray() ?? [])
        {
            if (source!["configMapRef"] is { } configMap)
            {
                Merge(environment, Data("ConfigMap", (string)configMap["name"]!, "data"));
            }
            else if (source["secretRef"] is { } secret && secrets && Find("Secret", (string)secret["name"]!) is not null)
            {
                Merge(environment, Data("Secret", (string)secret["name"]!, "stringData"));
            }
        }

        foreach (var entry in Container["env"]?.AsArray() ?? [])
        {
            var name = (string)entry!["name"]!;
            string? value = null;
            if (entry["value"] is { } literal)
            {
                value = Expand((string)literal!, environment);
            }
            else if (entry["valueFrom"]?["fieldRef"]?["fieldPath"] is { } field)
            {
                Assert.Equal("metadata.name", (string?)field);
                value = PodName;
            }
            else if (entry["valueFrom"]?["secretKeyRef"] is { } reference && secrets && Find("Secret", (string)reference["name"]!) is not null)
            {
                value = Data("Secret", (string)reference["name"]!, "stringData")[(string)reference["key"]!];
            }

            if (value is not null)
            {
                environment[name] = value;
            }
        }

        return environment;
    }

    private JsonObject? Find(string kind, string name) =>
        _rendering.OfKind(kind).SingleOrDefault(o => (string?)o["metadata"]!["name"] == name);

    private Dictionary<string, string> Data(string kind, string name, string field) =>
        (Find(kind, name) ?? throw new InvalidOperationException($"{kind} {name} is not rendered"))[field]?.AsObject()
            .ToDictionary(p => p.Key, p => (string)p.Value!, StringComparer.Ordinal) ?? [];

    private static void Merge(Dictionary<string, string> into, Dictionary<string, string> from)
    {
        foreach (var (key, value) in from)
        {
            into[key] = value;
        }
    }

    /// <summary><c>$(VAR)</c> of an earlier variable is replaced, as the kubelet does; unknown ones stay as written.</summary>
    private static string Expand(string value, Dictionary<string, string> environment) =>
        Reference().Replace(value, m => environment.TryGetValue(m.Groups[1].Value, out var v) ? v : m.Value);

    [GeneratedRegex(@"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")]
    private static partial Regex Reference();
}
