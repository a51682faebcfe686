using System.Text.Json;
using System.Text.Json.Nodes;
using PushService.Testing;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>
/// The Helm chart (<c>deploy/helm/pushservice</c>) rendered as <c>helm template</c> would, by the small renderer of
/// <c>deploy/helm/tests/render</c> (Go text/template and Sprig, as Helm is built on; there is no helm binary here), and
/// checked by <c>deploy/helm/tests/validate.mjs</c> against the Kubernetes schemas and values.schema.json.
/// </summary>
internal static class HelmChart
{
    private static readonly Lazy<Task<string>> Renderer = new(BuildRendererAsync);

    public static string ChartDirectory { get; } = Path.Combine(Repository.Root, "deploy", "helm", "pushservice");

    public static string TestsDirectory { get; } = Path.Combine(Repository.Root, "deploy", "helm", "tests");

    /// <summary>A values file of <c>deploy/helm/tests/values</c>.</summary>
    public static string ValuesFile(string name) => Path.Combine(TestsDirectory, "values", name);

    public sealed record Rendering(Command.Result Render, string ValuesJson, IReadOnlyList<JsonObject> Objects, string Notes, string ManifestFile)
    {
        public bool Succeeded => Render.ExitCode == 0;

        public JsonObject Single(string kind) => Objects.Single(o => (string?)o["kind"] == kind);

        public IEnumerable<JsonObject> OfKind(string kind) => Objects.Where(o => (string?)o["kind"] == kind);
    }

    public static async Task<Rendering> RenderAsync(IEnumerable<string>? valueFiles = null, IEnumerable<string>? sets = null, string release = "push")
    {
        var renderer = await Renderer.Value;
        var work = Directory.CreateTempSubdirectory("pushservice-chart-");
        var manifests = Path.Combine(work.FullName, "manifests.yaml");
        var values = Path.Combine(work.FullName, "values.json");
        var json = Path.Combine(work.FullName, "objects.json");
        var notes = Path.Combine(work.FullName, "NOTES.txt");
        var arguments = new List<string> { "-chart", ChartDirectory, "-name", release, "-values-out", values, "-json-out", json, "-notes-out", notes };
        foreach (var file in valueFiles ?? [])
        {
            arguments.AddRange(["-f", file]);
        }

        foreach (var set in sets ?? [])
        {
            arguments.AddRange(["-set", set]);
        }

        var result = await Command.RunAsync(renderer, arguments, Repository.Root);
        if (result.ExitCode != 0)
        {
            return new Rendering(result, "", [], "", manifests);
        }

        await File.WriteAllTextAsync(manifests, result.Output);
        var objects = JsonNode.Parse(await File.ReadAllTextAsync(json))!.AsArray().Select(o => o!.AsObject()).ToList();
        return new Rendering(result, await File.ReadAllTextAsync(values), objects, await File.ReadAllTextAsync(notes), manifests);
    }

    /// <summary>Validates the rendered objects against the Kubernetes schemas and the merged values against the chart's schema.</summary>
    public static async Task<Command.Result> ValidateAsync(Rendering rendering)
    {
        var values = Path.Combine(Path.GetDirectoryName(rendering.ManifestFile)!, "values.json");
        return await NodeValidateAsync(["--schema", Path.Combine(ChartDirectory, "values.schema.json"), "--values", values, rendering.ManifestFile]);
    }

    /// <summary>Checks only the merged values against values.schema.json (what Helm refuses before rendering).</summary>
    public static async Task<Command.Result> ValidateValuesAsync(Rendering rendering)
    {
        var values = Path.Combine(Path.GetDirectoryName(rendering.ManifestFile)!, "values.json");
        return await NodeValidateAsync(["--schema", Path.Combine(ChartDirectory, "values.schema.json"), "--values-only", values]);
    }

    private static Task<Command.Result> NodeValidateAsync(IEnumerable<string> arguments)
    {
        if (!Directory.Exists(Path.Combine(TestsDirectory, "node_modules", "kubernetes-models")))
        {
            throw new InvalidOperationException($"The chart validator's packages are missing: run npm ci --prefix {TestsDirectory} (scripts/test.sh does).");
        }

        return Command.RunAsync("node", ["validate.mjs", .. arguments], TestsDirectory);
    }

    /// <summary>Builds the renderer once per test run with Debian's Go and Sprig (GOPATH mode: nothing is downloaded).</summary>
    private static async Task<string> BuildRendererAsync()
    {
        var output = Path.Combine(Path.GetTempPath(), $"pushservice-render-{Environment.ProcessId}");
        var environment = new Dictionary<string, string>
        {
            ["GO111MODULE"] = "off",
            ["GOPATH"] = "/usr/share/gocode",
            ["GOCACHE"] = Path.Combine(Path.GetTempPath(), "pushservice-go-cache"),
            ["GOFLAGS"] = "",
        };
        var result = await Command.RunAsync("go", ["build", "-o", output, "./deploy/helm/tests/render"], Repository.Root, environment);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"The chart renderer did not build (scripts/test.sh installs golang-go, golang-github-masterminds-sprig-dev and golang-k8s-sigs-yaml-dev): {result}");
        }

        return output;
    }
}
