namespace PushService.IntegrationTests.Infrastructure;

/// <summary>Programs of this repository as the solution built them, in the configuration of these tests.</summary>
public static class BuiltAssembly
{
    /// <summary>The path of <paramref name="assembly"/>.dll built from the project in <paramref name="projectDirectory"/>.</summary>
    public static string Locate(string projectDirectory, string assembly)
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
        var dll = Path.Combine(RepositoryRoot, projectDirectory, "bin", configuration, "net10.0", assembly + ".dll");
        return File.Exists(dll) ? dll : throw new InvalidOperationException($"Build the solution first: {dll} is missing.");
    }

    public static string RepositoryRoot => PushService.Testing.Repository.Root;
}
