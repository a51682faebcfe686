using System.Text.Json;
using PushService.Testing;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>
/// What the repository ships for monitoring: the alert rules (deploy/prometheus/alerts.yaml) and the Grafana dashboard
/// (deploy/grafana/pushservice.json), read the way the tests need them.
/// </summary>
internal static class MonitoringFiles
{
    public static string AlertRulesPath { get; } = Path.Combine(Repository.Root, "deploy", "prometheus", "alerts.yaml");

    public static string DashboardPath { get; } = Path.Combine(Repository.Root, "deploy", "grafana", "pushservice.json");

    /// <summary>Each rule's name and expression, in file order (every rule is an alert with a one-line <c>expr</c>).</summary>
    public static IReadOnlyList<(string Alert, string Expression)> AlertRules()
    {
        var lines = File.ReadLines(AlertRulesPath).Select(l => l.Trim()).ToList();
        return [.. lines.Where(l => l.StartsWith("- alert: ", StringComparison.Ordinal)).Select(l => l["- alert: ".Length..])
            .Zip(lines.Where(l => l.StartsWith("expr: ", StringComparison.Ordinal)).Select(l => l["expr: ".Length..]))];
    }

    /// <summary>The PromQL of every panel target of the dashboard.</summary>
    public static IReadOnlyList<string> DashboardExpressions()
    {
        using var dashboard = JsonDocument.Parse(File.ReadAllText(DashboardPath));
        return [.. dashboard.RootElement.GetProperty("panels").EnumerateArray()
            .Where(p => p.TryGetProperty("targets", out _))
            .SelectMany(p => p.GetProperty("targets").EnumerateArray())
            .Select(t => t.GetProperty("expr").GetString()!)];
    }
}
