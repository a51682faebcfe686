using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using PushService.IntegrationTests.Infrastructure;
using PushService.Testing;

namespace PushService.IntegrationTests;

/// <summary>
/// The Dockerfile, without a Docker engine: its build stage carried out as Docker would on this checkout (the build
/// context filtered by .dockerignore, each COPY into a fresh directory standing for the stage's file system, each RUN
/// there), then the published gateway started as the runtime stage says (its ENV, ENTRYPOINT and CMD, as the image's
/// non-root user would) and asked for health, readiness, the embedded browser SDK and a WebSocket session.
/// </summary>
public sealed partial class DockerfileTests
{
    [Fact]
    public async Task TheImage_BuildsFromTheFilteredContext_AndItsEntryPointServesAsNonRoot()
    {
        var stages = Parse(await File.ReadAllTextAsync(Path.Combine(Repository.Root, "Dockerfile")));
        Assert.Equal(["build", "runtime"], stages.Select(s => s.Name));
        Assert.StartsWith("mcr.microsoft.com/dotnet/sdk:", stages[0].From, StringComparison.Ordinal);
        Assert.StartsWith("mcr.microsoft.com/dotnet/aspnet:", stages[1].From, StringComparison.Ordinal);

        var ignore = DockerIgnore(await File.ReadAllLinesAsync(Path.Combine(Repository.Root, ".dockerignore")));
        var root = Directory.CreateTempSubdirectory("pushservice-image-").FullName;
        try
        {
            // The build stage, with / of its file system at root/build.
            var filesystem = Path.Combine(root, "build");
            var workdir = "/";
            foreach (var (instruction, argument) in stages[0].Instructions)
            {
                switch (instruction)
                {
                    case "WORKDIR":
                        workdir = argument;
                        Directory.CreateDirectory(Rooted(filesystem, workdir));
                        break;
                    case "COPY":
                        var parts = argument.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                        var destination = parts[^1].StartsWith('/') ? parts[^1] : $"{workdir.TrimEnd('/')}/{parts[^1]}";
                        foreach (var source in parts[..^1])
                        {
                            var copied = CopyFromContext(source, Rooted(filesystem, destination), ignore);
                            Assert.True(copied > 0, $"COPY {source}: nothing in the build context (left out by .dockerignore?)");
                        }

                        break;
                    case "RUN":
                        var command = argument.Replace(" /app", $" {Rooted(filesystem, "/app")}", StringComparison.Ordinal);
                        var result = await Command.RunAsync("bash", ["-c", command], Rooted(filesystem, workdir), BuildEnvironment, TimeSpan.FromMinutes(5));
                        Assert.True(result.ExitCode == 0, $"RUN {argument}: {result}");
                        break;
                }
            }

            // The runtime stage: what it copies, who it runs as, and how.
            var runtime = stages[1].Instructions;
            Assert.Contains(("COPY", "--from=build /app ./"), runtime);
            Assert.Contains(("WORKDIR", "/app"), runtime);
            var user = runtime.Single(i => i.Instruction == "USER").Argument;
            Assert.True(user == "$APP_UID" || (int.TryParse(user, out var uid) && uid > 0), $"USER {user} is root or unknown");
            var entrypoint = JsonSerializer.Deserialize<string[]>(runtime.Single(i => i.Instruction == "ENTRYPOINT").Argument)!;
            var cmd = JsonSerializer.Deserialize<string[]>(runtime.Single(i => i.Instruction == "CMD").Argument)!;
            Assert.Equal(["dotnet", "PushService.Gateway.dll"], entrypoint);
            var environment = EnvironmentOf(runtime.Where(i => i.Instruction == "ENV").Select(i => i.Argument));
            Assert.Equal("1", environment["DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"]);
            Assert.Equal("0x400000", environment["DOTNET_GCgen0size"]);

            var app = Rooted(filesystem, "/app");
            Assert.True(File.Exists(Path.Combine(app, "PushService.Gateway.dll")), "the publish output has no PushService.Gateway.dll");
            Assert.Contains(cmd, a => a.StartsWith("--urls=http://+:", StringComparison.Ordinal));
            var port = FreePort.Next();
            var arguments = cmd.Select(a => a.StartsWith("--urls=", StringComparison.Ordinal) ? $"--urls=http://127.0.0.1:{port}" : a).ToList();
            await using var gateway = await GatewayProcess.LaunchPublishedAsync(Path.Combine(app, entrypoint[1]), "image", arguments, environment);
            using var http = new HttpClient { BaseAddress = gateway.BaseAddress };
            Assert.Equal("ok", await http.GetStringAsync(new Uri("/healthz", UriKind.Relative)));
            Assert.Equal("ready", await http.GetStringAsync(new Uri("/readyz", UriKind.Relative)));
            using var sdk = await http.GetAsync(new Uri("/sdk/push.js", UriKind.Relative));
            Assert.Equal(HttpStatusCode.OK, sdk.StatusCode);
            await using var client = await TestClient.OpenAsync(gateway.WebSocketUri);
            var connected = await client.ResultAsync(new { op = "connect" });
            Assert.False(string.IsNullOrEmpty(connected.GetProperty("node").GetString()));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>No build server left behind holding this test's pipes; no telemetry.</summary>
    private static readonly Dictionary<string, string> BuildEnvironment = new()
    {
        ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
        ["DOTNET_NOLOGO"] = "1",
        ["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0",
        ["MSBUILDDISABLENODEREUSE"] = "1",
        ["UseSharedCompilation"] = "false",
    };

    private sealed record Stage(string Name, string From, List<(string Instruction, string Argument)> Instructions);

    private static List<Stage> Parse(string dockerfile)
    {
        var arguments = new Dictionary<string, string>();
        var stages = new List<Stage>();
        var logical = ContinuedLine().Replace(dockerfile, " ").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'));
        foreach (var line in logical)
        {
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            var (instruction, argument) = (line[..space].ToUpperInvariant(), line[(space + 1)..].Trim());
            if (instruction == "ARG" && stages.Count == 0)
            {
                var (name, value) = (argument.Split('=')[0], argument.Split('=', 2)[1]);
                arguments[name] = value;
            }
            else if (instruction == "FROM")
            {
                var words = argument.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var image = Variable().Replace(words[0], m => arguments[m.Groups[1].Value]);
                stages.Add(new Stage(words.Length == 3 && words[1].Equals("AS", StringComparison.OrdinalIgnoreCase) ? words[2] : $"{stages.Count}", image, []));
            }
            else
            {
                stages[^1].Instructions.Add((instruction, argument));
            }
        }

        return stages;
    }

    private static Dictionary<string, string> EnvironmentOf(IEnumerable<string> envs)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var env in envs)
        {
            foreach (var pair in env.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                var (name, value) = (pair.Split('=', 2)[0], pair.Split('=', 2)[1]);
                environment[name] = value;
            }
        }

        return environment;
    }

    /// <summary>.dockerignore as Docker reads it: globs on paths from the context root, a match excluding what is under it.</summary>
    private static Func<string, bool> DockerIgnore(IEnumerable<string> lines)
    {
        var patterns = lines.Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(p => new Regex("^" + Regex.Escape(p.TrimEnd('/')).Replace(@"\*\*/", "(.*/)?", StringComparison.Ordinal)
                .Replace(@"\*", "[^/]*", StringComparison.Ordinal).Replace(@"\?", "[^/]", StringComparison.Ordinal) + "$"))
            .ToList();
        return path =>
        {
            var segments = path.Split('/');
            return Enumerable.Range(1, segments.Length).Any(n => patterns.Any(p => p.IsMatch(string.Join('/', segments[..n]))));
        };
    }

    /// <summary>Copies a context path (a file, or a directory's contents) as COPY does; returns how many files.</summary>
    private static int CopyFromContext(string source, string destination, Func<string, bool> ignored)
    {
        var path = Path.Combine(Repository.Root, source.TrimEnd('/'));
        var files = File.Exists(path) ? [path] : Directory.Exists(path) ? Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories) : [];
        var copied = 0;
        foreach (var file in files)
        {
            var relative = Path.GetRelativePath(Repository.Root, file).Replace('\\', '/');
            if (ignored(relative))
            {
                continue;
            }

            var target = File.Exists(path) && !destination.EndsWith('/') && !Directory.Exists(destination)
                ? destination
                : Path.Combine(destination, File.Exists(path) ? Path.GetFileName(file) : Path.GetRelativePath(path, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
            copied++;
        }

        return copied;
    }

    private static string Rooted(string filesystem, string path) => Path.Combine(filesystem, path.TrimStart('/'));

    [GeneratedRegex(@"\\\r?\n")]
    private static partial Regex ContinuedLine();

    [GeneratedRegex(@"\$\{(\w+)\}")]
    private static partial Regex Variable();
}
