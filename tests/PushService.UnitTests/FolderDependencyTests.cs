using System.Text.RegularExpressions;

namespace PushService.UnitTests;

/// <summary>
/// The gateway's folders use one another only as their READMEs say ("May use: ..."), and never in a cycle: read from
/// the sources' <c>using</c> directives and fully qualified names, so a new import that breaks the layering fails here.
/// </summary>
public sealed partial class FolderDependencyTests
{
    private static readonly string Gateway = Path.Combine(RepositoryRoot(), "src", "Gateway");

    [Fact]
    public void EveryFolder_UsesOnlyWhatItsReadmeAllows()
    {
        var uses = Uses();
        Assert.NotEmpty(uses);
        var violations = new List<string>();
        foreach (var (folder, used) in uses)
        {
            var allowed = Allowed(folder);
            violations.AddRange(used.Where(u => !allowed.Contains(u) && !IsWithin(u, folder)).Select(u => $"{folder} uses {u}"));
        }

        Assert.True(violations.Count == 0, "Not in the folder's README \"May use\" line: " + string.Join("; ", violations));
    }

    [Fact]
    public void NoFolders_UseEachOtherInACycle()
    {
        var uses = Uses();
        var cycles = new List<string>();
        foreach (var start in uses.Keys)
        {
            // A folder reaches itself again through what it uses: a cycle (a parent and its own subfolder excepted).
            var path = new Stack<string>();
            if (Reaches(start, start, uses, [], path))
            {
                cycles.Add(string.Join(" -> ", path.Reverse().Prepend(start)));
            }
        }

        Assert.True(cycles.Count == 0, "Cycles: " + string.Join("; ", cycles));
    }

    private static bool Reaches(string from, string target, Dictionary<string, HashSet<string>> uses, HashSet<string> seen, Stack<string> path)
    {
        foreach (var next in uses.GetValueOrDefault(from) ?? [])
        {
            if (IsWithin(next, from) || IsWithin(from, next))
            {
                continue;
            }

            path.Push(next);
            if (next == target || (seen.Add(next) && Reaches(next, target, uses, seen, path)))
            {
                return true;
            }

            path.Pop();
        }

        return false;
    }

    /// <summary>Each folder (as a namespace under PushService.Gateway, such as "Transport.Sockets") and the others it uses.</summary>
    private static Dictionary<string, HashSet<string>> Uses()
    {
        var uses = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(Gateway, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(Gateway, Path.GetDirectoryName(file)!);
            if (relative == "." || relative.Split(Path.DirectorySeparatorChar)[0] is "bin" or "obj" or "Properties")
            {
                continue;
            }

            var folder = relative.Replace(Path.DirectorySeparatorChar, '.');
            var used = uses.TryGetValue(folder, out var set) ? set : uses[folder] = new HashSet<string>(StringComparer.Ordinal);
            foreach (var line in File.ReadLines(file))
            {
                var trimmed = line.TrimStart();
                if (trimmed.StartsWith("//", StringComparison.Ordinal) || trimmed.StartsWith("namespace ", StringComparison.Ordinal))
                {
                    continue;
                }

                foreach (Match match in GatewayName().Matches(trimmed))
                {
                    // The longest leading part that is a folder: PushService.Gateway.Hub.LocalHub is Hub.
                    var parts = match.Groups[1].Value.Split('.');
                    var name = Enumerable.Range(1, parts.Length).Reverse().Select(n => string.Join('.', parts[..n]))
                        .FirstOrDefault(n => Directory.Exists(Path.Combine(Gateway, n.Replace('.', Path.DirectorySeparatorChar))));
                    if (name is not null && name != folder)
                    {
                        used.Add(name);
                    }
                }
            }
        }

        return uses;
    }

    /// <summary>The gateway folders the README of <paramref name="folder"/> (or of its nearest parent with one) allows.</summary>
    private static HashSet<string> Allowed(string folder)
    {
        var readme = Path.Combine(Gateway, folder.Replace('.', Path.DirectorySeparatorChar), "README.md");
        Assert.True(File.Exists(readme), $"{folder} has no README.md saying what it may use");
        var text = File.ReadAllText(readme);
        var at = text.IndexOf("May use:", StringComparison.Ordinal);
        Assert.True(at >= 0, $"{readme} has no \"May use:\" line");
        // The list runs to the end of its sentence: a full stop not inside a name such as Broker.Control.
        var line = Parenthesis().Replace(text[(at + "May use:".Length)..], "");
        var end = SentenceEnd().Match(line);
        return [.. line[..(end.Success ? end.Index : line.Length)].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)];
    }

    private static bool IsWithin(string folder, string parent) => folder.StartsWith(parent + ".", StringComparison.Ordinal);

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "PushService.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("PushService.sln not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"\bPushService\.Gateway\.([A-Z]\w*(?:\.[A-Z]\w*)*)")]
    private static partial Regex GatewayName();

    [GeneratedRegex(@"\([^)]*\)")]
    private static partial Regex Parenthesis();

    [GeneratedRegex(@"\.(\s|$)")]
    private static partial Regex SentenceEnd();
}
