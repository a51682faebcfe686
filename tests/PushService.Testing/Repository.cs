namespace PushService.Testing;

/// <summary>This repository, as seen from a test assembly built inside it.</summary>
public static class Repository
{
    /// <summary>The folder that holds <c>PushService.sln</c>, found upward from the test assembly.</summary>
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "PushService.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("PushService.sln not found above the test assembly.");
    }
}
